//! SSH access: public keys that parse, no private keys, Hetzner key names.

use super::Ctx;
use crate::diag::{Diagnostic, codes};
use crate::spec::did_you_mean;
use base64::Engine;

const ALGORITHMS: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A private key, PEM or OpenSSH, pasted where a public key belongs.
fn is_private(key: &str) -> bool {
    key.contains("-----BEGIN") || key.contains("PRIVATE KEY")
}

/// Why a line is not `algorithm base64-blob [comment]` with a matching blob.
fn public_key(key: &str) -> Result<(), String> {
    let mut fields = key.split_whitespace();
    let Some(alg) = fields.next() else {
        return Err("is empty".into());
    };
    if !ALGORITHMS.contains(&alg) {
        let hint = did_you_mean(alg, &ALGORITHMS)
            .map(|a| format!(" (did you mean `{a}`?)"))
            .unwrap_or_default();
        return Err(format!("starts with `{alg}`, not a key algorithm{hint}"));
    }
    let Some(blob) = fields.next() else {
        return Err("has no key data after the algorithm".into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "has key data that is not base64 (truncated or wrapped?)".to_string())?;
    // The blob is a sequence of SSH strings (u32 length, bytes): the algorithm
    // name, then the key's fields.
    let fields = ssh_strings(&bytes).ok_or("has key data that is truncated or damaged")?;
    let (embedded, rest) = fields.split_first().ok_or("has empty key data")?;
    if *embedded != alg.as_bytes() {
        return Err(format!(
            "says `{alg}` but its key data is a `{}` key",
            String::from_utf8_lossy(embedded)
        ));
    }
    let complete = match alg {
        "ssh-ed25519" => matches!(rest, [k] if k.len() == 32),
        "sk-ssh-ed25519@openssh.com" => matches!(rest, [k, _app] if k.len() == 32),
        "sk-ecdsa-sha2-nistp256@openssh.com" => rest.len() == 3,
        _ => rest.len() == 2, // rsa: e, n; ecdsa: curve, point
    };
    if !complete {
        return Err("has key data that is truncated or damaged".into());
    }
    Ok(())
}

/// Splits an SSH wire-format blob into its strings; `None` when one overruns.
fn ssh_strings(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let field = bytes.get(4..4usize.checked_add(len)?)?;
        out.push(field);
        bytes = &bytes[4 + len..];
    }
    Some(out)
}

/// Authorized keys are OpenSSH public key lines.
pub fn authorized_keys(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (i, key) in cx.spec.access.authorized_keys.iter().enumerate() {
        if is_private(key) {
            continue; // ssh::private_key, without echoing it
        }
        if let Err(why) = public_key(key) {
            out.push(
                Diagnostic::new(
                    &codes::SSH_AUTHORIZED_KEY,
                    format!("`access.authorized_keys[{i}]` is not an OpenSSH public key"),
                )
                .label(cx.span(&["access", "authorized_keys", &i.to_string()]), why)
                .help("paste one line of your `~/.ssh/id_ed25519.pub` unchanged: `ssh-ed25519 AAAA... comment`"),
            );
        }
    }
}

/// A private key is pointed at but masked in the excerpt (`redact`), so the key
/// does not end up in terminals and CI logs.
pub fn private_key(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (i, key) in cx.spec.access.authorized_keys.iter().enumerate() {
        if is_private(key) {
            let span = cx.span(&["access", "authorized_keys", &i.to_string()]);
            out.push(
                Diagnostic::new(
                    &codes::SSH_PRIVATE_KEY,
                    format!(
                        "`access.authorized_keys[{i}]` (entry {} of the list) is a private key; it is not shown",
                        i + 1
                    ),
                )
                .label(span, "private key (not shown)")
                .redact(span)
                .help("replace it with the public key (the `.pub` file) and generate a new key pair: if this file was ever committed or shared, the private key is leaked"),
            );
        }
    }
}

/// `access.ssh_source_ips` become a firewall rule: each must be a CIDR, and
/// opening SSH to the whole internet is what the firewall is there to prevent.
pub fn source_ips(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    for (i, cidr) in cx.spec.access.ssh_source_ips.iter().enumerate() {
        let span = cx.span(&["access", "ssh_source_ips", &i.to_string()]);
        let parsed = cidr.split_once('/').and_then(|(addr, prefix)| {
            let addr: std::net::IpAddr = addr.parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some(prefix)
        });
        match parsed {
            None => out.push(
                Diagnostic::new(&codes::SSH_SOURCE_IPS, format!("`{cidr}` is not a CIDR"))
                    .label(span, "not address/prefix")
                    .help("write networks like \"203.0.113.0/24\" or \"2001:db8::/48\" (a single address is /32 or /128)"),
            ),
            Some(0) => out.push(
                Diagnostic::new(&codes::SSH_SOURCE_IPS, "SSH would be open to the whole internet")
                    .severity(crate::diag::Severity::Warning)
                    .label(span, "every address")
                    .help("list the networks you connect from (office, VPN); root logs in with keys only, but the port invites scans"),
            ),
            Some(_) => {}
        }
    }
}

/// Hetzner key names are looked up one by one: no empty or repeated names.
pub fn hcloud_keys(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let keys = &cx.spec.access.hcloud_ssh_keys;
    for (i, key) in keys.iter().enumerate() {
        let span = cx.span(&["access", "hcloud_ssh_keys", &i.to_string()]);
        if key.trim().is_empty() {
            out.push(
                Diagnostic::new(&codes::SSH_HCLOUD_KEY, "an empty Hetzner SSH key name")
                    .label(span, "empty")
                    .help("give the key's name as `hcloud ssh-key list` shows it, or remove the entry"),
            );
        } else if let Some(first) = keys[..i].iter().position(|k| k == key) {
            out.push(
                Diagnostic::new(
                    &codes::SSH_HCLOUD_KEY,
                    format!("Hetzner SSH key `{key}` is listed twice"),
                )
                .label(span, "again")
                .label(
                    cx.span(&["access", "hcloud_ssh_keys", &first.to_string()]),
                    "first here",
                )
                .help("remove the repeated name"),
            );
        }
    }
}

/// Without a Hetzner SSH key, Hetzner emails a root password per server.
pub fn no_hcloud_keys(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.access.hcloud_ssh_keys.is_empty() {
        out.push(
            Diagnostic::new(
                &codes::SSH_NO_HCLOUD_KEYS,
                "no Hetzner SSH key: Hetzner emails a root password for every server it creates",
            )
            .label(cx.key_span(&["access", "hcloud_ssh_keys"]), "no key names")
            .help("upload a key to the project once and list its name, e.g. `hcloud_ssh_keys = [\"ops\"]`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyEQhJ0nFKHyOI3kVxP2PPaSbLJDDWZsl2GP/bwr5mu ops@example.com";

    fn with_key(k: &str) -> super::super::testing::Run {
        run(&[(KEY, k)])
    }

    #[test]
    fn public_keys() {
        for bad in [
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIPyEQhJ0nFKHyOI3kVxP2PPaSbLJDDWZsl2GP/bwr5mu",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyEQhJ0nFKHyOI3kVxP2PPaSbLJDDWZsl2GP/bwr5m",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyEQhJ0nFKHyOI3kVxP2PPa",
            "ssh-ed25519",
            "ssh-ed2551 AAAA",
            "",
        ] {
            let r = with_key(bad);
            assert_eq!(
                r.at(&codes::SSH_AUTHORIZED_KEY),
                [format!("\"{bad}\"")],
                "{bad}"
            );
        }
        let r = with_key(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyEQhJ0nFKHyOI3kVxP2PPaSbLJDDWZsl2GP/bwr5mu",
        );
        assert!(!r.fires(&codes::SSH_AUTHORIZED_KEY));
    }

    #[test]
    fn ssh_source_ips_are_cidrs_and_not_everyone() {
        use super::super::testing::run;
        let edit = |v: &str| {
            run(&[(
                "ssh_source_ips = [\"203.0.113.0/24\"]",
                &format!("ssh_source_ips = {v}"),
            )])
        };
        assert!(!edit("[\"203.0.113.0/24\", \"2001:db8::/48\"]").fires(&codes::SSH_SOURCE_IPS));
        assert_eq!(
            edit("[\"203.0.113.7\", \"10.0.0.0/33\"]").at(&codes::SSH_SOURCE_IPS),
            ["\"203.0.113.7\"", "\"10.0.0.0/33\""]
        );
        let open = edit("[\"0.0.0.0/0\"]");
        let d = open.with(&codes::SSH_SOURCE_IPS);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, crate::diag::Severity::Warning);
    }

    #[test]
    fn private_key_is_not_echoed() {
        let r = with_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAAsecretsecret\\n-----END OPENSSH PRIVATE KEY-----",
        );
        let d = r.with(&codes::SSH_PRIVATE_KEY);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].labels.len(), 1);
        assert_eq!(d[0].redact, [d[0].labels[0].span]);
        assert!(!format!("{d:?}").contains("secretsecret"));
        assert!(!r.fires(&codes::SSH_AUTHORIZED_KEY));
    }

    #[test]
    fn hcloud_key_names() {
        let r = run(&[("[\"ops\"]", "[\"ops\", \"\", \"ops\"]")]);
        assert_eq!(r.at(&codes::SSH_HCLOUD_KEY), ["\"\"", "\"ops\""]);
        let r = run(&[("[\"ops\"]", "[]")]);
        assert_eq!(r.at(&codes::SSH_NO_HCLOUD_KEYS), ["hcloud_ssh_keys"]);
        assert!(!run(&[]).fires(&codes::SSH_HCLOUD_KEY));
        assert!(!run(&[]).fires(&codes::SSH_NO_HCLOUD_KEYS));
    }
}
