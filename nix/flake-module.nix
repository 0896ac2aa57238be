# flake-parts module for an infra repo that uses k8sgen: a drift check per system,
# and optionally a server-side validation of the generated objects.
#
#   imports = [ inputs.k8sgen.flakeModules.default ];
#   k8sgen.specs = [ "clusters/dev.toml" "clusters/prod.toml" ];
#
# `nix flake check` then runs `k8sgen check` on the specs against the committed
# generated files and fails, with the diff, when they drifted.
#
#   k8sgen.serverValidate.envs = [ "dev" ];
#   k8sgen.serverValidate.crds = [ { url = "https://…/cluster.x-k8s.io_clusters.yaml"; hash = "sha256-…"; } ];
#
# adds `checks.<system>.k8sgen-server-validate`: kube-apiserver and etcd from your
# nixpkgs run on loopback inside the build sandbox (scripts/kube-up.sh with
# nixpkgs' binaries), the CRDs are installed, and every object of each nixidy
# env's rendered manifests (Helm charts included) is applied server-side by
# nix/server-validate.sh, the logic k8sgen's own conformance suite runs: a dry
# run without error or warning, a real apply, a second apply that changes nothing.
{ k8sgen }:
{
  config,
  lib,
  self,
  ...
}:
let
  cfg = config.k8sgen;
  scripts = ../scripts;
in
{
  options.k8sgen.specs = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
    example = [ "clusters/dev.toml" ];
    description = "Cluster specs (paths relative to the flake root) whose generated files `checks.<system>.k8sgen-drift` keeps honest.";
  };

  options.k8sgen.serverValidate = {
    envs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "dev" ];
      description = "nixidy environments (`flake.nixidyEnvs.<system>.<name>`, defined by the generated `nixidy/env.nix`) whose rendered manifests `checks.<system>.k8sgen-server-validate` applies to a real API server.";
    };
    crds = lib.mkOption {
      type = lib.types.listOf (
        lib.types.submodule {
          options = {
            url = lib.mkOption { type = lib.types.str; };
            hash = lib.mkOption { type = lib.types.str; };
          };
        }
      );
      default = [ ];
      description = "CustomResourceDefinition manifests installed before the objects, fixed by hash: those no chart of the env ships (ClusterAPI's and CAPH's CRDs, which clusterctl installs). Plain CRD files only: a webhook configuration would send every request to a webhook that does not run here.";
    };
    knownWarnings = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "A file of extended regular expressions (one per line, `#` comments) matching API server warnings that are reported but do not fail the check, e.g. ClusterAPI's v1beta1 deprecation.";
    };
  };

  config.perSystem =
    { pkgs, system, ... }:
    lib.mkMerge [
      (lib.mkIf (cfg.specs != [ ]) {
        checks.k8sgen-drift =
          pkgs.runCommand "k8sgen-drift"
            {
              nativeBuildInputs = [ k8sgen.packages.${system}.default ];
            }
            ''
              cd ${self}
              k8sgen check ${lib.escapeShellArgs cfg.specs}
              touch $out
            '';
      })
      # kube-apiserver runs on Linux only.
      (lib.mkIf (cfg.serverValidate.envs != [ ] && pkgs.stdenv.hostPlatform.isLinux) {
        checks.k8sgen-server-validate =
          pkgs.runCommand "k8sgen-server-validate"
            {
              nativeBuildInputs = [
                pkgs.bash
                pkgs.coreutils
                pkgs.diffutils
                pkgs.findutils
                pkgs.gawk
                pkgs.gnugrep
                pkgs.gnused
                pkgs.jq
                pkgs.kubectl
                pkgs.openssl
                pkgs.python3
                pkgs.yq-go
              ];
            }
            ''
              export HOME=$TMPDIR
              mkdir -p "$TMPDIR/bin"
              ln -s ${pkgs.kubernetes}/bin/kube-apiserver ${pkgs.etcd}/bin/etcd ${pkgs.kubectl}/bin/kubectl "$TMPDIR/bin/"
              export K8SGEN_KUBE_BIN=$TMPDIR/bin
              state=$(bash ${scripts}/kube-up.sh "$TMPDIR/kube")
              trap 'bash ${scripts}/kube-down.sh "$state"' EXIT
              export KUBECONFIG=$state/kubeconfig

              ${lib.concatMapStringsSep "\n" (
                crd: "kubectl apply --server-side --field-manager=k8sgen -f ${pkgs.fetchurl crd} >/dev/null"
              ) cfg.serverValidate.crds}
              ${lib.optionalString (
                cfg.serverValidate.crds != [ ]
              ) "kubectl wait --for=condition=Established crd --all --timeout=120s >/dev/null"}

              status=0
              ${lib.concatMapStringsSep "\n" (env: ''
                # nixidy writes <app>/<Kind>-<name>.yaml, several documents in one
                # file when names collide: one JSON file per object.
                objects="$TMPDIR/objects-${env}"
                rendered=${config.flake.nixidyEnvs.${system}.${env}.environmentPackage}
                mkdir -p "$objects"
                find -L "$rendered" -name '*.yaml' -type f | sort | while IFS= read -r f; do
                  rel="''${f#"$rendered"/}"
                  i=0
                  yq -o=json -I=0 'select(. != null)' "$f" | while IFS= read -r doc; do
                    i=$((i + 1))
                    printf '%s\n' "$doc" >"$objects/''${rel//\//_}.$i.json"
                  done
                done
                bash ${../nix/server-validate.sh} check "$KUBECONFIG" "$objects" ${env} ${
                  lib.optionalString (cfg.serverValidate.knownWarnings != null) "${cfg.serverValidate.knownWarnings}"
                } || status=1
              '') cfg.serverValidate.envs}
              [ "$status" -eq 0 ]
              touch $out
            '';
      })
    ];
}
