#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "e2e/cli.rs"]
mod cli;
