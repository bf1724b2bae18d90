//! The `volley` binary as a user runs it: exit codes, messages, and crash safety.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod ab;
mod ab_sequential;
mod abuse;
mod access;
mod api;
mod api_control;
mod api_messages;
mod audience;
mod bounce_mx;
mod breaker;
mod check;
mod cluster;
mod cluster_docs;
mod cluster_due;
mod cluster_follow;
mod cluster_quota;
mod cluster_tx;
mod cluster_view;
mod commands;
mod content;
mod conversions;
mod crash;
mod disk;
mod events;
mod format;
mod gc;
mod handover;
mod held;
mod holdout;
mod hygiene;
mod lift;
mod postfix;
mod postgres;
mod providers;
mod relays;
mod replies;
mod segments;
mod serve;
mod sources;
mod store_copy;
mod store_upgrade;
mod support;
mod tls_relay;
mod topics;
mod tracking;
mod warmup;
mod webhooks;
mod window;
mod xoauth2;
