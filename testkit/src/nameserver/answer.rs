//! Turning one request packet into one reply packet (or deliberate silence), from a
//! [`Zone`]. Pure: no sockets, so every rule is testable with bytes.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::zone::{canonical, parse_name, Data, Entry, Fault, Node, Zone};

/// Largest UDP reply for a client that offers no EDNS (RFC 1035).
const CLASSIC_UDP_LIMIT: usize = 512;

/// UDP payload the server itself advertises in EDNS replies (the DNS flag day 2020 value).
const SERVER_UDP_PAYLOAD: u16 = 1232;

/// Longest CNAME chain followed inside the zone (a loop stops here too).
const MAX_CNAME_CHAIN: usize = 8;

/// TTL and negative-caching TTL (SOA minimum) of the SOA sent with negative answers.
const NEGATIVE_TTL: u32 = 60;

/// How the reply travels, which decides its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// A datagram: at most 512 bytes, or what the client's EDNS offers; larger replies are
    /// truncated (TC bit) so the client retries over TCP.
    Udp,
    /// A stream with a 2-byte length prefix: up to 65,535 bytes.
    Tcp,
}

/// What the server does with one request.
#[derive(Debug)]
pub(super) struct Handled {
    /// The reply to send; `None` means stay silent (garbage, a response, a `timeout` name).
    pub(super) reply: Option<Vec<u8>>,
    /// The question asked (canonical name and type), when the packet had one.
    pub(super) question: Option<(String, RecordType)>,
}

/// Answers one request packet from `zone`.
pub(super) fn handle(zone: &Zone, packet: &[u8], transport: Transport) -> Handled {
    let request = match Message::from_vec(packet) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, len = packet.len(), "nameserver: undecodable packet");
            return Handled {
                reply: format_error_for_garbage(packet),
                question: None,
            };
        }
    };
    if request.metadata.message_type != MessageType::Query {
        return Handled {
            reply: None,
            question: None,
        };
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(SERVER_UDP_PAYLOAD);
        response.set_edns(edns);
    }
    let question = match only_question(&request) {
        Ok(query) => query,
        Err(code) => {
            response.metadata.response_code = code;
            return Handled {
                reply: encode(&response, limit(&request, transport)),
                question: None,
            };
        }
    };
    response.add_query(question.clone());
    let key = canonical(question.name());
    let asked = Some((key.clone(), question.query_type()));
    if fill(zone, &key, question, &mut response) == Outcome::Silent {
        return Handled {
            reply: None,
            question: asked,
        };
    }
    Handled {
        reply: encode(&response, limit(&request, transport)),
        question: asked,
    }
}

/// The single IN question of a standard query, or the response code refusing it.
fn only_question(request: &Message) -> Result<&Query, ResponseCode> {
    if request.metadata.op_code != OpCode::Query {
        return Err(ResponseCode::NotImp);
    }
    let [query] = request.queries.as_slice() else {
        return Err(ResponseCode::FormErr);
    };
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
        return Err(ResponseCode::Refused);
    }
    Ok(query)
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Reply,
    Silent,
}

/// Fills the answer (or the negative answer) for `question` into `response`.
fn fill(zone: &Zone, key: &str, question: &Query, response: &mut Message) -> Outcome {
    let asked = question.query_type();
    let mut owner = question.name().clone();
    let mut node = match zone.lookup(key) {
        Some(node) => node,
        None => return negative(response, ResponseCode::NXDomain),
    };
    for _ in 0..=MAX_CNAME_CHAIN {
        if let Some(outcome) = apply_fault(node, response) {
            return outcome;
        }
        let matching: Vec<&Entry> = node
            .records
            .iter()
            .filter(|entry| asked == RecordType::ANY || entry.data.record_type() == asked)
            .collect();
        if !matching.is_empty() {
            for entry in matching {
                match record(&owner, entry) {
                    Ok(record) => {
                        response.add_answer(record);
                    }
                    Err(reason) => return bad_zone_data(response, &owner, &reason),
                }
            }
            return Outcome::Reply;
        }
        let cname = node.records.iter().find_map(|entry| match &entry.data {
            Data::Cname(target) => Some((entry, target)),
            _ => None,
        });
        let Some((entry, target)) = cname else {
            return negative(response, ResponseCode::NoError);
        };
        let target_name = match (record(&owner, entry), parse_name(target)) {
            (Ok(record), Ok(target_name)) => {
                response.add_answer(record);
                target_name
            }
            (Err(reason), _) | (_, Err(reason)) => return bad_zone_data(response, &owner, &reason),
        };
        match zone.lookup(&canonical(&target_name)) {
            Some(next) => {
                owner = target_name;
                node = next;
            }
            // RFC 6604: the response code speaks of the last name in the chain.
            None => return negative(response, ResponseCode::NXDomain),
        }
    }
    // The chain is longer than we follow (or loops): hand back what we have.
    Outcome::Reply
}

/// SERVFAIL or silence for a scripted name.
fn apply_fault(node: &Node, response: &mut Message) -> Option<Outcome> {
    match node.fault? {
        Fault::ServFail => {
            response.metadata.response_code = ResponseCode::ServFail;
            Some(Outcome::Reply)
        }
        Fault::Timeout => Some(Outcome::Silent),
    }
}

/// NXDOMAIN or NODATA (NOERROR, no answer): the SOA goes in the authority section so
/// resolvers can cache the negative answer for [`NEGATIVE_TTL`].
fn negative(response: &mut Message, code: ResponseCode) -> Outcome {
    response.metadata.response_code = code;
    response.add_authority(soa());
    Outcome::Reply
}

fn bad_zone_data(response: &mut Message, owner: &Name, reason: &str) -> Outcome {
    tracing::warn!(%owner, reason, "nameserver: the zone holds an invalid record");
    response.answers.clear();
    response.metadata.response_code = ResponseCode::ServFail;
    Outcome::Reply
}

/// The SOA of the server's one (root) zone, sent with negative answers.
fn soa() -> Record {
    let mname = Name::from_labels(["ns", "nameserver", "invalid"]).unwrap_or_else(|_| Name::root());
    let rname =
        Name::from_labels(["hostmaster", "nameserver", "invalid"]).unwrap_or_else(|_| Name::root());
    let data = SOA::new(mname, rname, 1, 3600, 600, 86_400, NEGATIVE_TTL);
    Record::from_rdata(Name::root(), NEGATIVE_TTL, RData::SOA(data))
}

/// One zone entry as a wire record owned by `owner`.
fn record(owner: &Name, entry: &Entry) -> Result<Record, String> {
    let data = match &entry.data {
        Data::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, parse_name(exchange)?)),
        Data::A(ip) => RData::A(A(*ip)),
        Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Data::Txt(strings) => {
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        Data::Cname(target) => RData::CNAME(CNAME(parse_name(target)?)),
    };
    Ok(Record::from_rdata(owner.clone(), entry.ttl, data))
}

/// The largest reply this request may get over `transport`.
fn limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match &request.edns {
            Some(edns) => usize::from(edns.max_payload()).max(CLASSIC_UDP_LIMIT),
            None => CLASSIC_UDP_LIMIT,
        },
    }
}

/// Encodes `response`; when it does not fit in `limit` bytes, sends the header and
/// question only, with the TC bit set.
fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return Some(bytes),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "nameserver: reply does not encode whole"),
    }
    let truncated = response.truncate();
    match truncated.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        _ => {
            // Not even the question fits (or encodes): a bare SERVFAIL header does.
            let mut failure = Message::error_msg(
                response.metadata.id,
                response.metadata.op_code,
                ResponseCode::ServFail,
            );
            failure.metadata.authoritative = true;
            failure.to_vec().ok()
        }
    }
}

/// FORMERR for a packet that looks like a query header but does not decode; nothing for
/// anything shorter than a header or that claims to be a response.
fn format_error_for_garbage(packet: &[u8]) -> Option<Vec<u8>> {
    let [id_high, id_low, flags, ..] = *packet else {
        return None;
    };
    let is_response = flags & 0x80 != 0;
    if packet.len() < 12 || is_response {
        return None;
    }
    let id = u16::from_be_bytes([id_high, id_low]);
    Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        .to_vec()
        .ok()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ask(zone: &Zone, name: &str, record_type: RecordType, transport: Transport) -> Message {
        let mut request = Message::query();
        request.metadata.recursion_desired = true;
        request.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
        let bytes = request.to_vec().unwrap();
        let handled = handle(zone, &bytes, transport);
        let reply = Message::from_vec(&handled.reply.expect("a reply")).unwrap();
        assert_eq!(reply.metadata.id, request.metadata.id);
        assert_eq!(reply.queries, request.queries);
        assert!(reply.metadata.authoritative);
        reply
    }

    #[test]
    fn answers_echo_the_question_and_its_case() {
        let mut zone = Zone::new();
        zone.a("mx1.example", Ipv4Addr::new(127, 0, 0, 2));
        let reply = ask(&zone, "MX1.Example.", RecordType::A, Transport::Udp);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
        assert!(reply.answers[0]
            .name
            .eq_case(&Name::from_ascii("MX1.Example.").unwrap()));
    }

    #[test]
    fn negative_answers_carry_the_soa() {
        let mut zone = Zone::new();
        zone.a("mx1.example", Ipv4Addr::LOCALHOST);
        let nodata = ask(&zone, "mx1.example.", RecordType::MX, Transport::Udp);
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
        let nx = ask(&zone, "nope.example.", RecordType::MX, Transport::Udp);
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(nx.authorities[0].ttl, NEGATIVE_TTL);
    }

    #[test]
    fn cname_answers_include_the_target_records() {
        let mut zone = Zone::new();
        zone.cname("alias.example", "d1.example")
            .mx("d1.example", 10, "mx1.example");
        let reply = ask(&zone, "alias.example.", RecordType::MX, Transport::Udp);
        let types: Vec<RecordType> = reply.answers.iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::MX]);
        assert_eq!(
            reply.answers[1].name,
            Name::from_ascii("d1.example.").unwrap()
        );
        let just_cname = ask(&zone, "alias.example.", RecordType::CNAME, Transport::Udp);
        assert_eq!(just_cname.answers.len(), 1);
    }

    #[test]
    fn a_cname_loop_ends() {
        let mut zone = Zone::new();
        zone.cname("a.example", "b.example")
            .cname("b.example", "a.example");
        let reply = ask(&zone, "a.example.", RecordType::A, Transport::Udp);
        assert_eq!(reply.answers.len(), MAX_CNAME_CHAIN + 1);
    }

    #[test]
    fn large_udp_answers_are_truncated_but_tcp_ones_are_not() {
        let mut zone = Zone::new();
        for i in 0..40 {
            zone.a("many.example", Ipv4Addr::new(127, 0, 1, i));
        }
        let udp = ask(&zone, "many.example.", RecordType::A, Transport::Udp);
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());
        let tcp = ask(&zone, "many.example.", RecordType::A, Transport::Tcp);
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 40);
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let zone = Zone::new();
        assert!(handle(&zone, b"", Transport::Udp).reply.is_none());
        assert!(handle(&zone, b"\x12", Transport::Udp).reply.is_none());
        let mut header = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        header.extend_from_slice(b"\x05trunc");
        let reply = handle(&zone, &header, Transport::Udp).reply.unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, 0xabcd);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        header[2] = 0x81; // a "response": never answered, so no reflection loops
        assert!(handle(&zone, &header, Transport::Udp).reply.is_none());
    }

    #[test]
    fn timeout_names_get_no_reply_but_are_counted() {
        let mut zone = Zone::new();
        zone.timeout("slow.example");
        let mut request = Message::query();
        request.add_query(Query::query(
            Name::from_ascii("slow.example.").unwrap(),
            RecordType::MX,
        ));
        let handled = handle(&zone, &request.to_vec().unwrap(), Transport::Udp);
        assert!(handled.reply.is_none());
        assert_eq!(
            handled.question,
            Some(("slow.example".to_owned(), RecordType::MX))
        );
    }
}
