//! Actors: the only part of the exporter that changes the world it watches. Each is opt-in,
//! reads engine snapshots, acts through its own narrow client, and reports what it did back
//! to the engine as observations (so findings, metrics and `--record` see it).

pub mod remediation;
