//! Connection admission: at most `max_connections` sessions overall and
//! `max_connections_per_ip` per client address. The per-address table only holds addresses
//! with a session open, so it never has more than `max_connections` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open sessions, overall and per client address.
#[derive(Debug)]
pub(crate) struct Limits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` sessions are open.
    Total,
    /// `max_connections_per_ip` sessions from this address are open.
    PerIp,
}

/// One admitted session; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    /// Limits of `max_total` sessions, `max_per_ip` of them from one address.
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Limits> {
        Arc::new(Limits {
            max_total,
            max_per_ip,
            open: Mutex::default(),
        })
    }

    /// A place for a session from `ip`, or why there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        open.total += 1;
        open.per_ip.insert(ip, from_ip + 1);
        Ok(Permit {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Sessions open now, and distinct addresses they come from.
    pub(crate) fn open(&self) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (open.total, open.per_ip.len())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_limits_hold_and_places_come_back() {
        let limits = Limits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::PerIp);
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(c).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(limits.open(), (2, 2));
        let _c1 = limits.admit(c).unwrap();
        assert_eq!(limits.open(), (3, 3));
    }

    #[test]
    fn the_address_table_forgets_closed_clients() {
        let limits = Limits::new(10, 10);
        for i in 0..100u8 {
            let permit = limits.admit(IpAddr::from([10, 0, 1, i])).unwrap();
            drop(permit);
        }
        assert_eq!(limits.open(), (0, 0));
    }
}
