//! VERP return paths: `bounces+TOKEN@<bounce domain>`, where TOKEN is a short, signed id of
//! one recipient of one campaign, so a bounce that arrives days later lands on exactly that
//! recipient.
//!
//! TOKEN = base32 (lowercase, no padding) of: campaign number (4 bytes), recipient sequence
//! (5 bytes), and the first 8 bytes of HMAC-SHA256 over both under the store's secret. Base32
//! survives receivers that change the case of local parts; 28 characters keep the local part
//! well under 64.

use aws_lc_rs::hmac;

/// The local part before the `+`.
const PREFIX: &str = "bounces+";
/// Bytes of MAC kept in a token.
const MAC_LEN: usize = 8;

/// Makes and checks VERP return paths for one store.
#[derive(Clone)]
pub struct Verp {
    key: hmac::Key,
    domain: String,
}

impl std::fmt::Debug for Verp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verp")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Verp {
    /// A signer for `bounce_domain` with the store's `secret`.
    pub fn new(secret: &[u8; 32], bounce_domain: &str) -> Verp {
        Verp {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            domain: bounce_domain.to_ascii_lowercase(),
        }
    }

    /// The return path for recipient `seq` of campaign number `number`.
    pub fn return_path(&self, number: u32, seq: u64) -> String {
        format!("{PREFIX}{}@{}", self.token(number, seq), self.domain)
    }

    /// The token alone.
    pub fn token(&self, number: u32, seq: u64) -> String {
        let mut bytes = payload(number, seq).to_vec();
        bytes.extend_from_slice(&self.mac(&bytes));
        data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase()
    }

    /// The campaign number and sequence behind a VERP address (or a bare token), if its
    /// signature is ours; any case is accepted.
    pub fn decode(&self, address: &str) -> Option<(u32, u64)> {
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        let local = local.trim_start_matches('<');
        let token = match local.get(..PREFIX.len()) {
            Some(start) if start.eq_ignore_ascii_case(PREFIX) => &local[PREFIX.len()..],
            _ => local,
        };
        let bytes = data_encoding::BASE32_NOPAD
            .decode(token.to_ascii_uppercase().as_bytes())
            .ok()?;
        if bytes.len() != 9 + MAC_LEN {
            return None;
        }
        let (body, mac) = bytes.split_at(9);
        if !constant_time_eq(&self.mac(body), mac) {
            return None;
        }
        let number = u32::from_be_bytes(body[..4].try_into().ok()?);
        let mut seq = [0u8; 8];
        seq[3..].copy_from_slice(&body[4..9]);
        Some((number, u64::from_be_bytes(seq)))
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&self.key, body);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }
}

fn payload(number: u32, seq: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[..4].copy_from_slice(&number.to_be_bytes());
    out[4..].copy_from_slice(&seq.to_be_bytes()[3..]);
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_in_any_case_and_a_forged_one_does_not() {
        let verp = Verp::new(&[7; 32], "Bounce.Example.com");
        let address = verp.return_path(12, 345_678);
        assert!(address.starts_with("bounces+") && address.ends_with("@bounce.example.com"));
        assert!(address.split('@').next().unwrap().len() <= 40, "{address}");
        assert_eq!(verp.decode(&address), Some((12, 345_678)));
        assert_eq!(verp.decode(&address.to_uppercase()), Some((12, 345_678)));
        let other = Verp::new(&[8; 32], "bounce.example.com");
        assert_eq!(other.decode(&address), None, "another store's secret");
        let mut forged = verp.token(12, 345_678);
        forged.replace_range(0..1, if forged.starts_with('a') { "b" } else { "a" });
        assert_eq!(verp.decode(&forged), None);
        assert_eq!(verp.decode("bounces+notbase32!@x"), None);
        assert_eq!(verp.decode(""), None);
    }
}
