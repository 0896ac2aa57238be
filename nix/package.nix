# The k8sgen package: built from Cargo.lock, with shell completions and the man
# page generated from the CLI definition.
{
  lib,
  rustPlatform,
  installShellFiles,
  stdenv,
}:
rustPlatform.buildRustPackage {
  pname = "k8sgen";
  version = (lib.importTOML ../Cargo.toml).package.version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../templates
      ../data
      ../schema
      ../build.rs
      ../benches
      ../examples
      ../cheapam
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  # The test suite needs tools and network the build sandbox lacks (nix-instantiate,
  # shellcheck, taplo, graphviz, and cargo fetching cheapam's dependencies for the
  # `cargo build --locked` of the written crate); the repository's CI runs it whole.
  doCheck = false;

  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd k8sgen \
      --bash <($out/bin/k8sgen completions bash) \
      --zsh <($out/bin/k8sgen completions zsh) \
      --fish <($out/bin/k8sgen completions fish)
    $out/bin/k8sgen man --out-dir man
    installManPage man/*.1
  '';

  meta = {
    description = "Compiles one cluster spec into the Nix modules of a Nix-native Kubernetes platform on Hetzner Cloud";
    license = lib.licenses.mit;
    mainProgram = "k8sgen";
  };
}
