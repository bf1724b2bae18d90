//! Shared value types: ids, recipient states and delivery outcomes.
