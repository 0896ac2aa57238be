# The script of the flake check `k8sgen-server-validate` (nix/flake-module.nix),
# rendered without nixpkgs or flake-parts for scripts/conformance.sh: the module
# is evaluated against a minimal stand-in for nixpkgs' `lib` and for `pkgs` whose
# kube-apiserver, etcd and kubectl are the conformance suite's own (`kube`, a
# folder with bin/), `fetchurl` returns the local CRD file it is given, and one
# nixidy env whose rendered manifests are the folder `env`. The result is the
# check's shell script, which the suite runs.
{
  kube,
  crds,
  env,
  knownWarnings,
}:
let
  lib = {
    mkOption = x: x;
    types = {
      listOf = x: x;
      str = "str";
      submodule = x: x;
      nullOr = x: x;
      path = "path";
    };
    mkIf = c: x: if c then x else { };
    mkMerge = builtins.foldl' (a: b: a // b) { };
    concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);
    optionalString = c: s: if c then s else "";
    escapeShellArgs = l: builtins.concatStringsSep " " (map (x: "'${x}'") l);
  };
  pkgs = {
    runCommand = _name: _env: script: script;
    fetchurl = c: c.url;
    kubernetes = kube;
    etcd = kube;
    kubectl = kube;
    stdenv.hostPlatform.isLinux = true;
  };
  module = import ../nix/flake-module.nix { k8sgen = null; } {
    inherit lib;
    self = null;
    config = {
      k8sgen = {
        specs = [ ];
        serverValidate = {
          envs = [ "conformance" ];
          crds = map (url: {
            inherit url;
            hash = "";
          }) crds;
          inherit knownWarnings;
        };
      };
      flake.nixidyEnvs.x86_64-linux.conformance.environmentPackage = env;
    };
  };
in
(module.config.perSystem {
  inherit pkgs;
  system = "x86_64-linux";
}).checks.k8sgen-server-validate
