# The Kubernetes objects one cluster's generated nixidy env hands to the API
# server, rendered without nixidy (no upstream code in this repository), for
# scripts/conformance.sh.
#
# Arguments: `files`, the absolute paths of the cluster's generated nixidy files
# (nixidy/env.nix, nixidy/services/*.nix, nixidy/apps/*.nix, capi/objects.nix);
# `module`, the flake module name (`k8s/<cluster>`).
#
# Each file is evaluated on its own against a minimal stand-in for nixpkgs' `lib`
# (mkDefault marks a default and is stripped; Helm charts are not rendered), so
# every object keeps the file it came from. The definitions are then merged as
# the module system would (two different values for one leaf fail) for what
# spans files: an application's namespace, annotations and sync policy, and the
# env's target and defaults.
#
# The result is a list of { source, app, namespace, object }:
# - every typed resource (`resources.<group>.<version>.<Kind>.<name>`, and the
#   `namespaces` alias) and every untyped `objects` entry of every application;
# - a Namespace for each application with `createNamespace = true`;
# - the ArgoCD Application nixidy's app-of-apps writes for each application
#   (modules/nixidy/app-of-apps.nix upstream: name, annotations, finalizers,
#   project, source, destination, syncPolicy), in the app-of-apps namespace.
# Helm releases are listed as { helm = "<app>/<release>"; } entries: they are not
# rendered here, and the caller says so.
{
  files,
  module,
  # The cluster's capi/types.nix: the defaults its freeform resource types give
  # every ClusterAPI object (nixidy's module system merges them in).
  types ? null,
}:
let
  mkDefault = content: {
    _type = "override";
    priority = 1000;
    inherit content;
  };
  lib = {
    inherit mkDefault;
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    helm.downloadHelmChart = args: { downloadHelmChart = args; };
    mkOption = o: o;
    types = {
      attrsOf = t: t;
      submodule = f: f;
      anything = null;
    };
  };
  strip =
    v:
    if builtins.isAttrs v then
      (if (v._type or null) == "override" then strip v.content else builtins.mapAttrs (_: strip) v)
    else if builtins.isList v then
      map strip v
    else
      v;
  merge =
    path: a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (k: v: if a ? ${k} then merge "${path}.${k}" a.${k} v else v) b
    else if a == b then
      a
    else
      throw "conflicting definitions of ${path}";
  flakeArgs = {
    config = { };
    inputs = { };
    inherit lib;
    withSystem = null;
  };
  envModule =
    f:
    let
      m = import f;
      flake = if builtins.isFunction m then m flakeArgs else m;
    in
    flake.flake.modules.nixidy.${module} or null;
  evaluated = builtins.filter (x: x.defs != null) (
    map (
      f:
      let
        m = envModule f;
      in
      {
        source = f;
        defs =
          if m == null then
            null
          else
            strip (
              m {
                inherit lib;
                config = { };
              }
            );
      }
    ) files
  );
  env = builtins.foldl' (merge "") { } (map (x: x.defs) evaluated);
  nixidy = env.nixidy or { };
  target = nixidy.target or (throw "no nixidy.target in ${toString files}");
  appOfApps = {
    name = "apps";
    namespace = "argocd";
  }
  // (nixidy.appOfApps or { });
  autoSyncDefaults = {
    enable = false;
    prune = false;
    selfHeal = false;
  }
  // (nixidy.defaults.syncPolicy.autoSync or { });

  # The registered type of group/version/kind for an application in namespace
  # `ns`, when capi/types.nix registers one; its defaults for an object `name`.
  registered =
    ns:
    (builtins.head (import types).flake.modules.nixidy.${module}.nixidy.applicationImports) {
      inherit lib;
      config.namespace = ns;
    };
  typeDefaults =
    ns: group: version: kind: name:
    let
      r = (registered ns).options.resources;
    in
    if types != null && r ? ${group} && r.${group} ? ${version} && r.${group}.${version} ? ${kind} then
      strip ((r.${group}.${version}.${kind}.type { inherit name; }).config)
    else
      { };
  typedObjects =
    ns: resources:
    builtins.concatLists (
      builtins.attrValues (
        builtins.mapAttrs (
          group: versions:
          if group == "namespaces" then
            builtins.attrValues (
              builtins.mapAttrs (
                name: body:
                body
                // {
                  apiVersion = "v1";
                  kind = "Namespace";
                  metadata = (body.metadata or { }) // {
                    inherit name;
                  };
                }
              ) versions
            )
          else
            builtins.concatLists (
              builtins.attrValues (
                builtins.mapAttrs (
                  version: kinds:
                  builtins.concatLists (
                    builtins.attrValues (
                      builtins.mapAttrs (
                        kind: names:
                        builtins.attrValues (
                          builtins.mapAttrs (
                            name: body0:
                            let
                              body = merge "${group}.${version}.${kind}.${name}" (typeDefaults ns group version kind name) body0;
                            in
                            body
                            // {
                              apiVersion = if group == "core" then version else "${group}/${version}";
                              inherit kind;
                              metadata = (body.metadata or { }) // {
                                inherit name;
                              };
                            }
                          ) names
                        )
                      ) kinds
                    )
                  )
                ) versions
              )
            )
        ) resources
      )
    );

  # nixidy's sync options (modules/applications/syncPolicy.nix upstream).
  syncOptionStrings = {
    applyOutOfSyncOnly = "ApplyOutOfSyncOnly=true";
    createNamespace = "CreateNamespace=true";
    pruneLast = "PruneLast=true";
    replace = "Replace=true";
    serverSideApply = "ServerSideApply=true";
    failOnSharedResource = "FailOnSharedResource=true";
  };
  application =
    name: app:
    let
      policy = app.syncPolicy or { };
      autoSync = autoSyncDefaults // (policy.autoSync or { });
      options = builtins.filter (o: o != null) (
        map (k: if (policy.syncOptions or { }).${k} or false then syncOptionStrings.${k} else null) (
          builtins.attrNames syncOptionStrings
        )
      );
      finalizer = app.finalizer or (nixidy.defaults.finalizer or "background");
      annotations = app.annotations or { };
    in
    {
      apiVersion = "argoproj.io/v1alpha1";
      kind = "Application";
      metadata = {
        inherit name;
        inherit (appOfApps) namespace;
      }
      // (if annotations != { } then { inherit annotations; } else { })
      // (
        if finalizer == "background" then
          { finalizers = [ "resources-finalizer.argocd.argoproj.io/background" ]; }
        else if finalizer == "foreground" then
          { finalizers = [ "resources-finalizer.argocd.argoproj.io" ]; }
        else
          { }
      );
      spec = {
        project = app.project or "default";
        source = {
          repoURL = target.repository;
          targetRevision = target.branch;
          path =
            let
              root = target.rootPath or "./";
              sep = if builtins.substring (builtins.stringLength root - 1) 1 root == "/" then "" else "/";
            in
            "${root}${sep}${(app.output or { }).path or name}";
        };
        destination = {
          inherit (app) namespace;
          server = "https://kubernetes.default.svc";
        };
        syncPolicy =
          (
            if autoSync.enable then
              {
                automated = {
                  inherit (autoSync) prune selfHeal;
                };
              }
            else
              { }
          )
          // (if options != [ ] then { syncOptions = options; } else { })
          // (if policy ? retry then { inherit (policy) retry; } else { });
      };
    };

  apps = env.applications or { };
  perFile = builtins.concatMap (
    x:
    builtins.concatLists (
      builtins.attrValues (
        builtins.mapAttrs (
          name: fileApp:
          let
            app = apps.${name};
            entry = object: {
              inherit (x) source;
              app = name;
              namespace = app.namespace or "default";
              inherit object;
            };
          in
          map entry (typedObjects (app.namespace or "default") (fileApp.resources or { }) ++ (fileApp.objects or [ ]))
          ++ map (r: {
            inherit (x) source;
            app = name;
            helm = "${name}/${r}";
          }) (builtins.attrNames ((fileApp.helm or { }).releases or { }))
        ) ((x.defs.applications or { }))
      )
    )
  ) evaluated;
  # Per application: its Namespace (createNamespace) and its ArgoCD Application,
  # attributed to the file that sets the application's namespace.
  owner =
    name:
    (builtins.head (
      builtins.filter (x: (x.defs.applications or { }) ? ${name} && x.defs.applications.${name} ? namespace) (
        evaluated ++ [ { source = "(no file sets applications.${name}.namespace)"; } ]
      )
    )).source;
  perApp = builtins.concatLists (
    builtins.attrValues (
      builtins.mapAttrs (
        name: app:
        (
          if app.createNamespace or false then
            [
              {
                source = owner name;
                app = name;
                namespace = app.namespace;
                object = {
                  apiVersion = "v1";
                  kind = "Namespace";
                  metadata.name = app.namespace;
                };
              }
            ]
          else
            [ ]
        )
        ++ [
          {
            source = owner name;
            app = appOfApps.name;
            inherit (appOfApps) namespace;
            object = application name app;
          }
        ]
      ) apps
    )
  );
in
perFile ++ perApp
