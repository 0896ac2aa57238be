# flake-parts module for an infra repo that uses k8sgen: a drift check per system.
#
#   imports = [ inputs.k8sgen.flakeModules.default ];
#   k8sgen.specs = [ "clusters/dev.toml" "clusters/prod.toml" ];
#
# `nix flake check` then runs `k8sgen check` on the specs against the committed
# generated files and fails, with the diff, when they drifted.
{ k8sgen }:
{
  config,
  lib,
  self,
  ...
}:
{
  options.k8sgen.specs = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
    example = [ "clusters/dev.toml" ];
    description = "Cluster specs (paths relative to the flake root) whose generated files `checks.<system>.k8sgen-drift` keeps honest.";
  };

  config.perSystem =
    { pkgs, system, ... }:
    lib.mkIf (config.k8sgen.specs != [ ]) {
      checks.k8sgen-drift =
        pkgs.runCommand "k8sgen-drift"
          {
            nativeBuildInputs = [ k8sgen.packages.${system}.default ];
          }
          ''
            cd ${self}
            k8sgen check ${lib.escapeShellArgs config.k8sgen.specs}
            touch $out
          '';
    };
}
