//! `volley status`: counts by state, as a table or JSON.

use crate::args::StatusArgs;
use crate::ui;
use crate::words::numbers::counted;
use volley::model::format_millis;

pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<u8> {
    let viewed = crate::view::load(&args.campaign)?;
    let settings = &viewed.settings;
    let report = volley::runtime::status(settings).await?;
    let c = &report.counts;
    if args.json {
        let json = report.to_json();
        ui::line(&serde_json::to_string_pretty(&json)?);
        return Ok(crate::exit::OK);
    }
    let live = report
        .live_from
        .map(|pid| format!(" (sending now, pid {pid})"))
        .unwrap_or_default();
    ui::line(&format!("campaign {}{live}", report.campaign));
    for (name, value) in [
        ("total", c.total),
        ("pending", c.pending),
        ("delivered", c.delivered),
        ("deferred", c.deferred),
        ("waiting", c.waiting),
        ("bounced", c.bounced),
        ("expired", c.expired),
        ("suppressed", c.suppressed),
        ("held", c.held),
        ("holdout", c.holdout),
        ("cancelled", c.cancelled),
        ("invalid rows", c.invalid),
        ("duplicates", c.duplicate),
        ("excluded", c.excluded),
    ] {
        // The holdout only for a campaign that has one; cancelled only for one cancelled
        // over the API; excluded only for one whose `where` left rows out; waiting only for
        // one with recipients waiting for their sending window.
        if !matches!(name, "holdout" | "cancelled" | "excluded" | "waiting") || value > 0 {
            ui::line(&format!("  {name:<13}{value:>10}"));
        }
    }
    let t = &report.tracking;
    if t.opens + t.clicks + t.machine_opens + t.machine_clicks + t.unsubscribed > 0 {
        ui::line(&format!(
            "  opened {} ({})  clicked {} ({})  unsubscribed {}  machine opens {}  machine clicks {}",
            t.opened,
            counted(t.opens, "open", "opens"),
            t.clicked,
            counted(t.clicks, "click", "clicks"),
            t.unsubscribed,
            t.machine_opens,
            t.machine_clicks
        ));
    }
    if let Some(due) = report.next_due.filter(|_| c.deferred > 0) {
        ui::line(&format!("  next retry due at {}", format_millis(due)));
    }
    if let Some(opens) = report.next_window {
        ui::line(&format!(
            "  {} waiting for their sending window; the next window opens at {}",
            counted(c.waiting, "recipient", "recipients"),
            format_millis(opens)
        ));
    }
    if let Some((cap, limit, at)) = &report.paused {
        ui::line(&format!(
            "  paused: {cap} = {limit} reached; sending goes on at {}",
            format_millis(*at)
        ));
    }
    if let Some(warmup) = &report.warmup {
        print_warmup(warmup);
    }
    if !report.destinations.is_empty() {
        print_destinations(&report.destinations);
    }
    for (name, messages) in &report.connection_limits {
        ui::line(&format!(
            "  learned limit: {name} takes {} per connection",
            counted(*messages, "message", "messages")
        ));
    }
    if let Some(stop) = &report.stopped {
        ui::line(&crate::words::blocks::stop_line(stop));
    }
    for line in crate::words::blocks::block_lines(&report.blocks) {
        ui::line(&format!("  {line}"));
    }
    if !report.nodes.is_empty() {
        print_nodes(&report.nodes);
    }
    print_relays(&report.relays);
    for webhook in &report.webhooks {
        let failing = match (&webhook.last_error, webhook.next_attempt) {
            (Some(error), Some(at)) => {
                format!("; failing ({error}), next try at {}", format_millis(at))
            }
            (Some(error), None) => format!("; failing ({error})"),
            _ => String::new(),
        };
        ui::line(&format!(
            "  webhook {}: {} not yet acknowledged{failing}",
            webhook.name,
            counted(webhook.backlog, "event", "events")
        ));
    }
    Ok(crate::exit::OK)
}

/// What each relay did (`[[relay]]`), one line each: delivered, deferred, bounced, and the
/// times it was taken out for a cool-down. Nothing for a campaign sent direct to MX.
fn print_relays(relays: &[volley::store::RelayTally]) {
    for relay in relays {
        let mut line = format!(
            "  relay {}: {} delivered, {} deferred, {} bounced",
            relay.relay, relay.delivered, relay.deferred, relay.bounced
        );
        if relay.cooldowns > 0 {
            line.push_str(&format!(
                "; taken out {}",
                counted(relay.cooldowns, "time", "times")
            ));
        }
        ui::line(&line);
    }
}

/// The warm-up today: per provider the ceiling, what was sent, what was held back.
fn print_warmup(warmup: &volley::runtime::WarmupStatus) {
    ui::line(&format!(
        "  warm-up {} (today's ceilings; the next day begins at {}):",
        warmup.key,
        format_millis(warmup.next_day)
    ));
    ui::line(&format!(
        "    {:<12} {:>9} {:>9} {:>9}  how it came about",
        "provider", "ceiling", "sent", "held back"
    ));
    for p in &warmup.providers {
        let ceiling = p
            .ceiling
            .limit
            .map_or_else(|| "none".to_owned(), |n| n.to_string());
        ui::line(&format!(
            "    {:<12} {:>9} {:>9} {:>9}  {}",
            p.provider,
            ceiling,
            p.sent,
            p.held,
            p.ceiling.change.describe()
        ));
    }
}

/// The cluster's nodes: live ones first, then stopped or silent ones.
fn print_nodes(nodes: &[volley::store::NodeInfo]) {
    let live = nodes.iter().filter(|n| n.live).count();
    ui::line(&format!("  nodes ({live} live of {}):", nodes.len()));
    ui::line(&format!(
        "    {:<24} {:<20} {:>10} {:>7} {:>12}  state",
        "name", "host", "heartbeat", "leases", "last minute"
    ));
    let mut sorted: Vec<_> = nodes.iter().collect();
    sorted.sort_by_key(|n| (!n.live, n.name.clone()));
    for n in sorted {
        let state = match (n.live, n.stopping) {
            (true, _) => "live",
            (false, true) => "stopped (leases handed back)",
            (false, false) => "silent (taken for dead)",
        };
        let host = format!(
            "{}{}",
            n.host.as_deref().unwrap_or("?"),
            n.pid.map(|p| format!(" pid {p}")).unwrap_or_default()
        );
        let name: String = n.name.chars().take(24).collect();
        let host: String = host.chars().take(20).collect();
        ui::line(&format!(
            "    {name:<24} {host:<20} {:>9}s {:>7} {:>12}  {state}",
            n.heartbeat_age.as_secs(),
            n.leases,
            n.sent_last_minute
        ));
    }
}

/// The running send's destinations, busiest first (at most 20 lines).
fn print_destinations(destinations: &[volley::model::DestinationStatus]) {
    let mut sorted: Vec<_> = destinations.iter().collect();
    sorted.sort_by(|a, b| {
        (b.queued + b.connections, b.delivered).cmp(&(a.queued + a.connections, a.delivered))
    });
    ui::line(&format!("  destinations ({}):", destinations.len()));
    ui::line(&format!(
        "    {:<40} {:>11} {:>10} {:>7} {:>10}  state",
        "name", "connections", "rate", "queued", "delivered"
    ));
    for d in sorted.iter().take(20) {
        let rate = d
            .rate
            .map_or_else(|| "-".to_owned(), crate::words::numbers::format_per_second);
        let state = match (d.suspended_for, d.failing_for, d.backing_off) {
            _ if d.taken_out_for.is_some() => {
                let s = d.taken_out_for.unwrap_or(0);
                format!("taken out for its cool-down, tried again in {s}s")
            }
            (Some(s), _, _) if d.block.is_some() => {
                format!("suspended for {s}s (policy block)")
            }
            (Some(s), _, _) => format!("suspended for {s}s (throttled {})", times(d.throttled)),
            (_, Some(s), _) => format!("unreachable, retrying in {s}s"),
            (_, _, true) => format!("backing off (throttled {})", times(d.throttled)),
            _ => "ok".to_owned(),
        };
        let name: String = d.name.chars().take(40).collect();
        ui::line(&format!(
            "    {name:<40} {:>5} of {:<3} {rate:>10} {:>7} {:>10}  {state}",
            d.connections, d.connection_limit, d.queued, d.delivered
        ));
    }
}

/// How often a destination throttled us: `1 time`, `3 times`.
fn times(n: u64) -> String {
    counted(n, "time", "times")
}
