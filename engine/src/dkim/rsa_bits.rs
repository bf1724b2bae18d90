//! Reads an RSA private key's modulus size from its DER encoding, so a key the crypto library
//! refuses as too small can be reported with its actual size ("1024 bits").

/// One DER element: its tag and contents.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;

/// Modulus bits of a PKCS#1 `RSAPrivateKey` (SEQUENCE { version, n, ... }).
pub(super) fn pkcs1_modulus_bits(der: &[u8]) -> Option<usize> {
    let (SEQUENCE, body, _) = element(der)? else {
        return None;
    };
    let (INTEGER, _version, rest) = element(body)? else {
        return None;
    };
    let (INTEGER, modulus, _) = element(rest)? else {
        return None;
    };
    integer_bits(modulus)
}

/// Modulus bits of a PKCS#8 `PrivateKeyInfo` wrapping an RSA key.
pub(super) fn pkcs8_modulus_bits(der: &[u8]) -> Option<usize> {
    let (SEQUENCE, body, _) = element(der)? else {
        return None;
    };
    let (INTEGER, _version, rest) = element(body)? else {
        return None;
    };
    let (SEQUENCE, _algorithm, rest) = element(rest)? else {
        return None;
    };
    let (OCTET_STRING, inner, _) = element(rest)? else {
        return None;
    };
    pkcs1_modulus_bits(inner)
}

fn integer_bits(value: &[u8]) -> Option<usize> {
    let start = value.iter().position(|&b| b != 0)?;
    let value = value.get(start..)?;
    let lead = *value.first()?;
    Some((value.len() - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

const BIT_STRING: u8 = 0x03;

/// Modulus bits of an RSA `SubjectPublicKeyInfo` (what a DKIM `k=rsa` record's `p=` holds):
/// SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0, RSAPublicKey { n, e } } }.
pub(super) fn spki_modulus_bits(der: &[u8]) -> Option<usize> {
    let (SEQUENCE, body, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, _algorithm, rest) = element(body)? else {
        return None;
    };
    let (BIT_STRING, bits, _) = element(rest)? else {
        return None;
    };
    let (0, public_key) = bits.split_first()? else {
        return None;
    };
    let (SEQUENCE, key, _) = element(public_key)? else {
        return None;
    };
    let (INTEGER, modulus, _) = element(key)? else {
        return None;
    };
    integer_bits(modulus)
}
