# cheapam: Kubernetes IPAM and Hetzner Cloud node controller.
# Pure Rust (rustls, no OpenSSL); dependencies pinned by Cargo.lock.
{ rustPlatform, lib }:
rustPlatform.buildRustPackage {
  pname = "cheapam";
  version = "0.1.0";

  src = lib.cleanSource ./.;
  cargoLock.lockFile = ./Cargo.lock;

  # Build and install only the controller; `bench` is a development tool.
  cargoBuildFlags = [
    "--bin"
    "cheapam"
  ];

  # The test suite (`cargo test --locked`) runs in the repository's CI; it has timing-based
  # tests (client timeouts, rate-limit waits) that do not belong in an image build.
  doCheck = false;

  meta = {
    description = "Kubernetes IPAM and Hetzner Cloud node controller (pod CIDRs, node init, Cilium LB-IPAM pool, DNSEndpoint)";
    license = lib.licenses.mit;
    mainProgram = "cheapam";
    platforms = lib.platforms.linux;
  };
}
