//! The rig's cases, one test binary so that two run at a time across all of them
//! (docker_rig::shared::Turn).

mod cloudwatch;
mod log_loss;
