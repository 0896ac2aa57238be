{
  description = "k8sgen: compiles one cluster spec into the Nix modules of a Nix-native Kubernetes platform on Hetzner Cloud";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    flake-parts.url = "github:hercules-ci/flake-parts";
  };

  outputs =
    inputs@{ flake-parts, self, ... }:
    flake-parts.lib.mkFlake { inherit inputs; } {
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];

      perSystem =
        { pkgs, self', ... }:
        {
          packages.default = pkgs.callPackage ./nix/package.nix { };

          apps.default = {
            type = "app";
            program = "${self'.packages.default}/bin/k8sgen";
          };

          devShells.default = pkgs.mkShell {
            inputsFrom = [ self'.packages.default ];
            packages = [
              pkgs.clippy
              pkgs.rustfmt
              pkgs.nix
              pkgs.shellcheck
              pkgs.taplo
            ];
          };
        };

      # For the infra repo: `imports = [ inputs.k8sgen.flakeModules.default ];`
      # then `k8sgen.specs = [ "clusters/dev.toml" ];` gives
      # `checks.<system>.k8sgen-drift`, which fails when generated files drifted.
      flake.flakeModules.default = import ./nix/flake-module.nix { k8sgen = self; };
    };
}
