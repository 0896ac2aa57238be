//! The one reader of each kind of secret reference (docs/architecture.md),
//! as the generated code runs it: `clan secrets get NAME`, `clan vars get
//! MACHINE GENERATOR/FILE`, `sops -d --extract '["a"]["b"]' FILE`. The secret
//! sync app runs it from shell; the terranix configuration through Terraform's
//! `external` data source. Both run it from the infra repo's root (sops paths
//! are relative to it; clan reads the flake there), found by walking up to the
//! nearest `flake.nix`.

use super::shell::word;
use crate::plan::SecretSource;
use std::collections::BTreeMap;

/// The tool a reader needs on `PATH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    Clan,
    Sops,
}

/// Which tool reads `source`.
pub fn tool(source: &SecretSource) -> Tool {
    match source {
        SecretSource::ClanSecret(_) | SecretSource::ClanVar(_) => Tool::Clan,
        SecretSource::Sops(_) => Tool::Sops,
    }
}

/// `a.b` as sops' extract path `["a"]["b"]` (validation keeps quotes and
/// brackets out of the segments).
pub fn sops_extract(key: &str) -> String {
    key.split('.').map(|s| format!("[\"{s}\"]")).collect()
}

/// The command that prints the secret, as argv.
pub fn argv(source: &SecretSource) -> Vec<String> {
    let words: Vec<&str> = match source {
        SecretSource::ClanSecret(r) => vec!["clan", "secrets", "get", &r.clan_secret],
        SecretSource::ClanVar(r) => {
            let (machine, file) = r.clan_var.split_once('/').unwrap_or((&r.clan_var, ""));
            vec!["clan", "vars", "get", machine, file]
        }
        SecretSource::Sops(r) => {
            return vec![
                "sops".into(),
                "-d".into(),
                "--extract".into(),
                sops_extract(&r.key),
                r.sops.clone(),
            ];
        }
    };
    words.into_iter().map(String::from).collect()
}

/// POSIX sh: sets `root` to the nearest folder at or above the working
/// directory that holds `flake.nix` (the infra repo).
pub const FIND_REPO_ROOT: &str = r#"root=$PWD
while [ ! -e "$root/flake.nix" ]; do
  if [ "$root" = / ]; then
    echo "k8sgen: no flake.nix in $PWD or above it" >&2
    exit 1
  fi
  root=$(dirname "$root")
done
"#;

/// The reader of `source` as one shell command line, run in the repo root
/// (`$root`, see [`FIND_REPO_ROOT`]) in a subshell: `(cd "$root" && clan ...)`.
pub fn shell_command(source: &SecretSource) -> String {
    let words: Vec<String> = argv(source).iter().map(|w| word(w)).collect();
    format!("cd \"$root\" && {}", words.join(" "))
}

/// The read, as Terraform's `external` data source runs it: a fixed POSIX sh
/// program per reader; the reference arrives as the JSON query on stdin (data
/// never becomes script text) and the value leaves as `{"value": ...}`.
pub struct ExternalReader {
    /// `program`: `sh -c <script>`.
    pub program: Vec<String>,
    /// `query`: the reference's parts.
    pub query: BTreeMap<String, String>,
}

/// [`ExternalReader`] for `source`.
pub fn external(source: &SecretSource) -> ExternalReader {
    let (read, query): (&str, Vec<(&str, String)>) = match source {
        SecretSource::ClanSecret(r) => (
            r#"value=$(clan secrets get "$(field name)")"#,
            vec![("name", r.clan_secret.clone())],
        ),
        SecretSource::ClanVar(r) => {
            let (machine, file) = r.clan_var.split_once('/').unwrap_or((&r.clan_var, ""));
            (
                r#"value=$(clan vars get "$(field machine)" "$(field file)")"#,
                vec![("machine", machine.to_string()), ("file", file.to_string())],
            )
        }
        SecretSource::Sops(r) => (
            r#"value=$(sops -d --extract "$(field extract)" "$(field file)")"#,
            vec![("file", r.sops.clone()), ("extract", sops_extract(&r.key))],
        ),
    };
    let script = format!(
        "set -eu\n{FIND_REPO_ROOT}cd \"$root\"\nquery=$(cat)\nfield() {{ printf '%s' \"$query\" | jq -r --arg k \"$1\" '.[$k]'; }}\n{read}\nprintf '%s' \"$value\" | jq -Rs '{{value: .}}'\n"
    );
    ExternalReader {
        program: vec!["sh".into(), "-c".into(), script],
        query: query.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ClanSecretRef, ClanVarRef, SopsRef};

    #[test]
    fn each_reference_has_its_one_reader() {
        let secret = SecretSource::ClanSecret(ClanSecretRef {
            clan_secret: "hetzner-api-token".into(),
        });
        let var = SecretSource::ClanVar(ClanVarRef {
            clan_var: "admin/hcloud/token".into(),
        });
        let sops = SecretSource::Sops(SopsRef {
            sops: "secrets/k8s.yaml".into(),
            key: "hcloud.token".into(),
        });
        assert_eq!(
            argv(&secret),
            ["clan", "secrets", "get", "hetzner-api-token"]
        );
        assert_eq!(argv(&var), ["clan", "vars", "get", "admin", "hcloud/token"]);
        assert_eq!(
            argv(&sops),
            [
                "sops",
                "-d",
                "--extract",
                r#"["hcloud"]["token"]"#,
                "secrets/k8s.yaml"
            ]
        );
        let ext = external(&var);
        assert_eq!(ext.query["machine"], "admin");
        assert_eq!(ext.query["file"], "hcloud/token");
        assert!(ext.program[2].contains(r#"clan vars get "$(field machine)" "$(field file)""#));
        assert_eq!(
            (tool(&secret), tool(&var), tool(&sops)),
            (Tool::Clan, Tool::Clan, Tool::Sops)
        );
    }
}
