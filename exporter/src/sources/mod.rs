//! The outside world -> [`Observation`](dge_core::observation::Observation)s. Sources never decide
//! anything: they translate and count what they could not translate.

pub mod discord;
pub mod files;
pub mod kubernetes;
pub mod positions;
pub mod sim;
