{
  # A stand-in for the user's infra flake; only its presence matters here.
  outputs = _: { };
}
