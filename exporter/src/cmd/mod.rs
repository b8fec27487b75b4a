//! One module per subcommand; `main.rs` parses the command line and calls these.

pub mod check;
pub mod demo;
pub mod parse;
pub mod replay;
pub mod run;
