//! End-to-end behaviour of the engine through its public API: real TCP/TLS SMTP sessions to
//! the engine's loopback test server, real sled stores in temp dirs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod support;

mod ab;
mod audience;
mod bounce_corpus;
mod bounce_mx;
mod bounces;
mod breaker;
mod direct;
mod errors;
mod faults;
mod layering;
mod mta_sts;
mod relays;
mod replies;
mod resume;
mod send;
mod serve;
mod shaping;
mod sink_shaping;
mod sources;
mod tracking;
mod tracking_limits;
mod transactional;
mod warmup;
mod window;
mod xoauth2;
