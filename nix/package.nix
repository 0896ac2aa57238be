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
      ../examples
      ../golden
      ../tests
      ../cheapam
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  # The tests that need nix-instantiate, shellcheck or taplo say they skipped
  # inside the build sandbox; the repository's CI runs them.
  doCheck = true;

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
