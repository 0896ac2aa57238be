# Layered OCI image of cheapam: the binary and CA certificates for the Hetzner API, nothing else.
# Usage: pkgs.callPackage ./image.nix { cheapam = pkgs.callPackage ./default.nix { }; }
{
  dockerTools,
  cheapam,
  cacert,
}:
dockerTools.buildLayeredImage {
  name = "cheapam";
  tag = cheapam.version;

  contents = [ cacert ];

  config = {
    Entrypoint = [ "${cheapam}/bin/cheapam" ];
    Env = [
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
    ExposedPorts = {
      "9090/tcp" = { };
    };
    User = "65534:65534";
  };
}
