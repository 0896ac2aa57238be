//! The boot path of a real bring-up (issue 11), one regression check per defect
//! a step-by-step walk found, each against the generated files as Nix
//! evaluates them or as the node runs them:
//! - `/opt/cni/bin` is a 0755 directory the CNI plugins are installed into on
//!   every boot (Cilium's init containers write there), foreign files stay;
//! - kubeadm advertises etcd and the API server on the private network, and
//!   every kubelet registers the private address (`node-ip`), read from
//!   Hetzner's metadata service before `kubeadm init|join`;
//! - the version assertion is about the minor, and names the ClusterAPI/CAPH
//!   releases that support the nodes' minor;
//! - cloud-final (which runs kubeadm) waits for containerd and the plugins;
//! - the static pods see real CA files, not links into the store;
//! - the public NIC keeps its IPv6 address.
//!
//! Needs nix-instantiate and bash: in CI (`CI` set) they are required, elsewhere
//! the tests say loudly that they skipped.

#[path = "capi_eval/mod.rs"]
mod capi_eval;
mod common;

use serde_json::Value as Json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Kubernetes versions the nodes' nixpkgs might ship, against the reference's 1.34.2.
const NIXPKGS_VERSIONS: [&str; 4] = ["1.34.2", "1.34.5", "1.35.0", "1.33.9"];

/// The node module of `case`'s first cluster, evaluated with stand-ins for
/// nixpkgs' `lib` and `pkgs` once per Kubernetes version in [`NIXPKGS_VERSIONS`].
fn node_module(nix: &Path, case: &str) -> Json {
    let dir = capi_eval::compile_case(case);
    let cluster = capi_eval::clusters(dir.path()).remove(0);
    let file = dir
        .path()
        .join(format!("modules/k8s/{cluster}/nodes/node.nix"));
    let versions = NIXPKGS_VERSIONS.map(|v| format!("{v:?}")).join(" ");
    let expr = format!(
        r#"let
  lib = {{
    mkDefault = x: x;
    optional = c: x: if c then [ x ] else [ ];
    versions.majorMinor = v:
      let p = builtins.splitVersion v; in "${{builtins.elemAt p 0}}.${{builtins.elemAt p 1}}";
  }};
  names = [ "kubernetes" "cri-tools" "cni-plugins" "conntrack-tools" "curl" "ethtool"
    "iproute2" "iptables" "socat" "util-linux" "coreutils" "gnused" "containerd" "gzip"
    "btrfs-progs" ];
  pkgsFor = version: builtins.listToAttrs (map (n: {{
    name = n;
    value = {{ outPath = "/nix/store/0000-${{n}}"; inherit version; }};
  }}) names) // {{ callPackage = path: args: "/nix/store/0000-callPackage"; }};
  module = (import {file}).flake.modules.nixos."k8s/{cluster}/node";
  eval = version:
    let m = module {{ inherit lib; pkgs = pkgsFor version; modulesPath = "/m"; }};
    in {{
      assertions = map (a: {{ inherit (a) assertion message; }}) m.assertions;
      inherit (m) warnings;
      tmpfiles = m.systemd.tmpfiles.rules;
      cni = {{ inherit (m.systemd.services.k8sgen-cni-plugins) wantedBy before script; }};
      cloudFinal = m.systemd.services.cloud-final;
      cheapamImage = {{ inherit (m.systemd.services.k8sgen-cheapam-image) before; }};
      ipv6 = {{ inherit (m.systemd.services.k8sgen-public-ipv6) script; }};
      etc = m.environment.etc;
      kernelParams = m.boot.kernelParams;
      cloudInitPath = map toString m.services.cloud-init.extraPackages;
    }};
in builtins.listToAttrs (map (v: {{ name = v; value = eval v; }}) [ {versions} ])"#,
        file = file.display(),
    );
    let out = Command::new(nix)
        .args(["--eval", "--strict", "--json", "--expr", &expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn node_module_installs_writable_cni_plugins_and_boots_in_order() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let Some(bash) = common::require_tool("bash") else {
        return;
    };
    let all = node_module(&nix, "reference");
    let m = &all["1.34.2"];

    // /opt/cni/bin: a 0755 directory, no read-only copy of the store path.
    let tmpfiles: Vec<&str> = m["tmpfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        tmpfiles.contains(&"d /opt/cni/bin 0755 root root -"),
        "{tmpfiles:?}"
    );
    assert!(
        !tmpfiles.iter().any(|r| r.starts_with("C /opt/cni/bin")),
        "{tmpfiles:?}"
    );
    // The plugins are installed before containerd (and so before any pod).
    assert_eq!(
        m["cni"]["before"],
        serde_json::json!(["containerd.service", "kubelet.service"])
    );
    assert!(
        m["cni"]["wantedBy"]
            .as_array()
            .unwrap()
            .contains(&"multi-user.target".into())
    );

    // Run the unit's script against a scratch /opt/cni/bin and a 0555 store copy.
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store/bin");
    let dest = scratch.path().join("opt/cni/bin");
    std::fs::create_dir_all(&store).unwrap();
    for plugin in ["bridge", "host-local", "loopback"] {
        let p = store.join(plugin);
        std::fs::write(&p, format!("#!/bin/sh\necho {plugin}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o555)).unwrap();
    let script = m["cni"]["script"].as_str().unwrap();
    assert!(
        script.contains("install -m 0755 -o root -g root"),
        "{script}"
    );
    let runnable = script
        .replace("/opt/cni/bin", dest.to_str().unwrap())
        .replace("/nix/store/0000-cni-plugins/bin", store.to_str().unwrap())
        // Owner flags need root; the modes are what is checked here.
        .replace(" -o root -g root", "");
    let run = |text: &str| {
        let out = Command::new(&bash).args(["-euc", text]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&runnable);
    std::fs::write(dest.join("cilium-cni"), "cilium's own").unwrap();
    run(&runnable);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dest), 0o755);
    for plugin in ["bridge", "host-local", "loopback"] {
        assert_eq!(mode(&dest.join(plugin)), 0o755, "{plugin}");
    }
    assert_eq!(
        std::fs::read_to_string(dest.join("cilium-cni")).unwrap(),
        "cilium's own"
    );
    assert!(
        std::fs::read_dir(&dest).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "temporary files left behind"
    );
    // Let the temp dir clean up the read-only store copy.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();

    // cloud-final runs kubeadm once: after containerd, the plugins, the hostname.
    let after = m["cloudFinal"]["after"].as_array().unwrap();
    for unit in [
        "containerd.service",
        "k8sgen-cni-plugins.service",
        "k8sgen-hostname.service",
    ] {
        assert!(
            after.contains(&unit.into()),
            "cloud-final after {unit}: {after:?}"
        );
    }
    // The cheapam image is loaded before kubeadm starts the control plane.
    let image_before = m["cheapamImage"]["before"].as_array().unwrap();
    assert!(
        image_before.contains(&"cloud-final.service".into()),
        "{image_before:?}"
    );
    // Real CA files for the static pods.
    for file in [
        "ssl/certs/ca-certificates.crt",
        "ssl/certs/ca-bundle.crt",
        "pki/tls/certs/ca-bundle.crt",
    ] {
        assert_eq!(m["etc"][file]["mode"], "0444", "{file}");
    }
    // Interface names as Hetzner's network configuration has them, and the
    // public IPv6 address from the metadata.
    assert!(
        m["kernelParams"]
            .as_array()
            .unwrap()
            .contains(&"net.ifnames=0".into())
    );
    let ipv6 = tempfile::tempdir().unwrap();
    let log = ipv6.path().join("ip.log");
    std::fs::write(
        ipv6.path().join("metadata"),
        "hostname: dev-general-abc\ninstance-id: 42\nnetwork-config:\n  config:\n  - mac_address: 96:00:00:00:00:01\n    name: eth0\n    subnets:\n    - ipv4: true\n      type: dhcp\n    - address: 2a01:4f8:c17:1234::1/64\n      gateway: fe80::1\n      ipv6: true\n      type: static\n    type: physical\n  version: 1\npublic-ipv4: 203.0.113.10\n",
    )
    .unwrap();
    let script = format!(
        "curl() {{ cat {dir}/metadata; }}\nip() {{ echo \"ip $*\" >> {log}; }}\n{}",
        m["ipv6"]["script"].as_str().unwrap(),
        dir = ipv6.path().display(),
        log = log.display()
    );
    run(&script);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ip -6 address replace 2a01:4f8:c17:1234::1/64 dev eth0\nip -6 route replace default via fe80::1 dev eth0\n"
    );
    // curl on cloud-init's PATH for the private-address script.
    assert!(
        m["cloudInitPath"]
            .as_array()
            .unwrap()
            .contains(&"/nix/store/0000-curl".into())
    );
}

#[test]
fn version_assertion_is_about_the_minor() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let all = node_module(&nix, "reference");
    let assertion = |v: &str| &all[v]["assertions"][0];
    // Same minor, any patch: evaluates; a newer patch warns.
    assert_eq!(assertion("1.34.2")["assertion"], true);
    assert_eq!(all["1.34.2"]["warnings"], serde_json::json!([]));
    assert_eq!(assertion("1.34.5")["assertion"], true);
    let warning = all["1.34.5"]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("1.34.5, newer than cluster.kubernetes_version = \"1.34.2\""));
    // Another minor: refused, saying which providers support that minor.
    assert_eq!(assertion("1.35.0")["assertion"], false);
    let message = assertion("1.35.0")["message"].as_str().unwrap();
    assert!(message.contains("ships Kubernetes 1.35.0"), "{message}");
    assert!(
        message.contains("supported by ClusterAPI 1.12 to 1.14, CAPH 1.1:"),
        "{message}"
    );
    assert_eq!(assertion("1.33.9")["assertion"], false);
}

/// The kubeadm configurations of `objects` (KubeadmControlPlane and the
/// KubeadmConfigTemplates), as `(name, kubeadmConfigSpec)`.
fn kubeadm_specs(objects: &[Json]) -> Vec<(String, Json)> {
    objects
        .iter()
        .filter_map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            match o["kind"].as_str().unwrap() {
                "KubeadmControlPlane" => Some((name, o["spec"]["kubeadmConfigSpec"].clone())),
                "KubeadmConfigTemplate" => Some((name, o["spec"]["template"]["spec"].clone())),
                _ => None,
            }
        })
        .collect()
}

/// `node-ip` from `kubeletExtraArgs` in either API version's shape.
fn node_ip(registration: &Json) -> Option<String> {
    let args = &registration["kubeletExtraArgs"];
    match args {
        Json::Array(items) => items
            .iter()
            .find(|a| a["name"] == "node-ip")
            .map(|a| a["value"].as_str().unwrap().to_string()),
        Json::Object(map) => map.get("node-ip").map(|v| v.as_str().unwrap().to_string()),
        _ => None,
    }
}

#[test]
fn every_node_advertises_its_private_address() {
    let Some(nix) = common::require_tool("nix-instantiate") else {
        return;
    };
    let placeholder = k8sgen::plan::capi::PRIVATE_ADDRESS;
    // The reference (v1beta2) and the HA case (v1beta1, three control planes).
    for case in ["reference", "three-locations"] {
        let dir = capi_eval::compile_case(case);
        for cluster in capi_eval::clusters(dir.path()) {
            let file = dir
                .path()
                .join(format!("modules/k8s/{cluster}/capi/objects.nix"));
            let got = capi_eval::evaluate(&nix, &file, &format!("k8s/{cluster}"));
            let specs = kubeadm_specs(&got.objects);
            assert!(specs.len() >= 2, "{case}: {specs:?}");
            for (name, spec) in &specs {
                let at = format!("{case}/{cluster}/{name}");
                // The script is written and runs before kubeadm, on both files.
                let files = spec["files"].as_array().unwrap();
                let script = files
                    .iter()
                    .find(|f| f["path"] == k8sgen::plan::capi::PRIVATE_ADDRESS_SCRIPT_PATH)
                    .unwrap_or_else(|| panic!("{at}: no private-address script"));
                assert_eq!(
                    script["content"],
                    k8sgen::plan::capi::PRIVATE_ADDRESS_SCRIPT
                );
                let pre = spec["preKubeadmCommands"][0].as_str().unwrap();
                assert!(
                    pre.contains("/run/kubeadm/kubeadm.yaml")
                        && pre.contains("/run/kubeadm/kubeadm-join-config.yaml"),
                    "{at}: {pre}"
                );
                assert_eq!(
                    node_ip(&spec["joinConfiguration"]["nodeRegistration"]).as_deref(),
                    Some(placeholder),
                    "{at}: join node-ip"
                );
                if spec.get("initConfiguration").is_some() {
                    // The control plane: etcd and the API server on the private address.
                    assert_eq!(
                        spec["initConfiguration"]["localAPIEndpoint"]["advertiseAddress"],
                        placeholder,
                        "{at}"
                    );
                    assert_eq!(
                        spec["joinConfiguration"]["controlPlane"]["localAPIEndpoint"]["advertiseAddress"],
                        placeholder,
                        "{at}"
                    );
                    assert_eq!(
                        node_ip(&spec["initConfiguration"]["nodeRegistration"]).as_deref(),
                        Some(placeholder),
                        "{at}: init node-ip"
                    );
                }
            }
            // A sub-range of the network for the servers, not the whole network.
            let hetzner = got
                .objects
                .iter()
                .find(|o| o["kind"] == "HetznerCluster")
                .unwrap();
            let network = &hetzner["spec"]["hcloudNetwork"];
            assert_ne!(network["subnetCidrBlock"], network["cidrBlock"], "{case}");
            // Old templates do not hold the application OutOfSync.
            for t in got.objects.iter().filter(|o| {
                o["kind"] == "HCloudMachineTemplate" || o["kind"] == "KubeadmConfigTemplate"
            }) {
                assert_eq!(
                    t["metadata"]["annotations"]["argocd.argoproj.io/compare-options"],
                    "IgnoreExtraneous"
                );
            }
        }
    }
}

#[test]
fn private_address_script_fills_in_the_metadata_address() {
    let Some(sh) = common::require_tool("sh") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Hetzner's answer: a YAML list of the server's private networks.
    fake(
        "curl",
        r#"case "$*" in
  *private-networks*) cat "$FAKE_METADATA" ;;
  *) exit 22 ;;
esac"#,
    );
    fake("sleep", "exit 0");
    let script = dir.path().join("private-address.sh");
    std::fs::write(&script, k8sgen::plan::capi::PRIVATE_ADDRESS_SCRIPT).unwrap();
    let init = dir.path().join("kubeadm.yaml");
    let join = dir.path().join("kubeadm-join-config.yaml");
    let placeholder = k8sgen::plan::capi::PRIVATE_ADDRESS;
    let config = format!(
        "localAPIEndpoint:\n  advertiseAddress: {placeholder}\nnodeRegistration:\n  kubeletExtraArgs:\n  - name: node-ip\n    value: {placeholder}\n"
    );
    std::fs::write(&init, &config).unwrap();
    let metadata = dir.path().join("metadata");
    std::fs::write(
        &metadata,
        "- ip: 10.0.0.3\n  alias_ips: [10.0.0.9]\n  interface_num: 1\n  mac_address: 86:00:00:2a:7d:e0\n  network_id: 1234\n  network_name: dev\n  network: 10.0.0.0/16\n  subnet: 10.0.0.0/24\n  gateway: 10.0.0.1\n",
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = || {
        Command::new(&sh)
            .arg(&script)
            .arg(&init)
            .arg(&join)
            .env("PATH", &path)
            .env("FAKE_METADATA", &metadata)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let filled = std::fs::read_to_string(&init).unwrap();
    assert_eq!(filled, config.replace(placeholder, "10.0.0.3"));
    assert!(!join.exists(), "the script must not create a missing file");

    // No private network (yet, or ever): it gives up loudly, kubeadm never runs
    // with the placeholder.
    std::fs::write(&init, &config).unwrap();
    std::fs::write(&metadata, "[]\n").unwrap();
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no private network address"));
    assert_eq!(std::fs::read_to_string(&init).unwrap(), config);
}
