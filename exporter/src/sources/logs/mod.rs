//! Bot log lines -> session Observations: container framing, ANSI, data-driven rule profiles.
