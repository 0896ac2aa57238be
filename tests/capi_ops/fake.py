#!/usr/bin/env python3
"""One fake for every tool the generated bootstrap and update apps call
(kubectl, clusterctl, kind, hcloud, ssh, curl, nix, clan), chosen by its
first argument. A JSON world in $FAKE_STATE makes probes and actions
consistent; every call is appended to $FAKE_LOG as
`step<TAB>phase<TAB>R|W|FAIL<TAB>tool args...`. Test-only."""
import json, os, sys

# Called as `fake.py TOOL ARGS...` by a one-line wrapper named TOOL on PATH.
tool = sys.argv[1]
args = sys.argv[2:]
state_path = os.environ["FAKE_STATE"]
world = json.load(open(state_path)) if os.path.exists(state_path) else {}
world.setdefault("clusters", {})
world.setdefault("images", [])
world.setdefault("kind", [])
world.setdefault("dns", {})
world.setdefault("marks", [])
step = os.environ.get("K8SGEN_BOOTSTRAP_STEP", "-")
phase = os.environ.get("K8SGEN_BOOTSTRAP_PHASE", "-")
line = tool + " " + " ".join(args)


def log(kind):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(f"{step}\t{phase}\t{kind}\t{line}\n")


def save():
    json.dump(world, open(state_path, "w"), indent=1, sort_keys=True)


def done(kind, out="", code=0):
    log(kind)
    save()
    sys.stdout.write(out)
    sys.exit(code)


if os.environ.get("FAKE_FAIL_STEP") and os.environ["FAKE_FAIL_STEP"] == step and phase == "run":
    done("FAIL", code=1)
if os.environ.get("FAKE_FAIL_MATCH") and os.environ["FAKE_FAIL_MATCH"] in line:
    done("FAIL", code=1)


def opt(name, default=None):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return default


def cluster_of(path):
    if not path or not os.path.exists(path):
        return None
    cid = open(path).read().strip()
    return world["clusters"].setdefault(cid, {"providers": False, "namespaces": [], "secrets": [],
                                              "applied": [], "cluster_object": False, "app_of_apps": False})


# The objects of each application, as (kind, name, namespace).
APPS = {
    "capi": [("Namespace", "dev", None), ("Cluster", "dev", "dev")],
    "cilium": [("DaemonSet", "cilium", "kube-system")],
    "cheapam": [("Deployment", "cheapam", "kube-system")],
    "coredns": [("Deployment", "coredns", "kube-system")],
    "cert-manager": [("CustomResourceDefinition", "certificates.cert-manager.io", None),
                     ("Deployment", "cert-manager", "cert-manager")],
    "external-dns": [("Deployment", "external-dns", "external-dns")],
    "argocd": [("Namespace", "argocd", None), ("Deployment", "argocd-server", "argocd")],
}

if tool == "nix":
    if args[0] == "eval" and "--json" in args:
        # nixidyEnvs.<system>.<env>.config.applications."<app>".objects: only
        # the applications listed above render (any other would be a bug).
        target = next(a for a in args if "#" in a)
        app = target.split('.applications."', 1)[1].split('"', 1)[0]
        if app not in APPS:
            done("FAIL", code=1)
        objects = []
        for kind, name, ns in APPS[app]:
            meta = {"name": name}
            if ns:
                meta["namespace"] = ns
            objects.append({"apiVersion": "v1", "kind": kind, "metadata": meta})
        done("R", json.dumps(objects))
    if args[0] == "eval":
        done("R", "x86_64-linux")
    if args[0] == "build":
        target, link = args[1], opt("--out-link")
        if target.endswith("bootstrapPackage"):
            open(link, "w").write("kind: Application\n")
            done("R")
        if "#" in target and "-node-" in target:
            done("R", "/nix/store/new-" + target.split("-node-")[1] + "\n")
        done("R")
    if args[0] == "run":
        app = args[1].split("#", 1)[1]
        if app.endswith("-images"):
            world["images"] = sorted(set(world["images"]) | set(os.environ["FAKE_IMAGES"].split()))
        elif app.endswith("-secrets"):
            target = args[args.index("--target") + 1]
            c = cluster_of(os.environ.get("KUBECONFIG"))
            if c is None:
                done("FAIL", code=1)
            names = os.environ["FAKE_SECRETS_" + target.upper()].split()
            c["secrets"] = sorted(set(c["secrets"]) | set(names))
        else:
            world["marks"].append(app)
        done("W")
    if args[0] == "copy":
        done("W")
    done("R")

if tool == "clan":
    done("R", "fake-dns-token\n")

if tool == "hcloud":
    sel = opt("--selector", "")
    if args[:2] == ["server", "list"]:
        # CAPH's servers exist once the ClusterAPI objects are on a cluster.
        owned = any(c["cluster_object"] for c in world["clusters"].values()) or world.get("servers")
        done("R", "dev-control-plane-abcde\n" if owned else "")
    name = sel.split("=", 1)[1] if "=" in sel else ""
    done("R", "4711\n" if name in world["images"] else "")

if tool == "kind":
    if args[:2] == ["get", "clusters"]:
        done("R", "".join(k + "\n" for k in world["kind"]))
    name, kc = opt("--name"), opt("--kubeconfig")
    if args[:2] == ["create", "cluster"]:
        world["kind"].append(name)
    open(kc, "w").write("kind\n")
    done("W")

if tool == "clusterctl":
    if args[0] == "init":
        c = cluster_of(opt("--kubeconfig"))
        c["providers"] = True
        done("W")
    if args[:2] == ["get", "kubeconfig"]:
        done("R", "workload\n")
    if args[0] == "move":
        src, dst = cluster_of(opt("--kubeconfig")), cluster_of(opt("--to-kubeconfig"))
        ns = opt("--namespace")
        moved = [s for s in src["secrets"] if s.startswith(ns + "/")]
        src["secrets"] = [s for s in src["secrets"] if s not in moved]
        dst["secrets"] = sorted(set(dst["secrets"]) | set(moved))
        src["cluster_object"], dst["cluster_object"] = False, True
        done("W")
    done("R")

if tool == "curl":
    url = args[-1]
    if url.endswith("/readyz"):
        seeded = bool(world["dns"].get("A")) and any(c["cluster_object"] for c in world["clusters"].values())
        if seeded:
            world["api_polls"] = world.get("api_polls", 0) + 1
        up = seeded and world["api_polls"] > 2
        done("R", "ok" if up else "", 0 if up else 7)
    header = [a for a in args if a.startswith("@")]
    token = open(header[0][1:]).read() if header else ""
    if "Bearer fake-dns-token" not in token:
        done("FAIL", code=22)
    method = opt("-X", "GET")
    if "/zones?name=" in url:
        done("R", json.dumps({"result": [{"id": "zone1"}]}))
    if method == "GET":
        kind = url.split("type=", 1)[1].split("&", 1)[0]
        content = world["dns"].get(kind)
        done("R", json.dumps({"result": [{"id": "rec-" + kind, "content": content}] if content else []}))
    body = json.loads(opt("--data"))
    if method == "PATCH":
        kind = url.rsplit("/rec-", 1)[1]
        world["dns"][kind] = body["content"]
        done("W", json.dumps({"success": True}))
    if body["type"] in world["dns"]:
        # Cloudflare refuses an identical record (code 81058).
        done("FAIL", code=22)
    world["dns"][body["type"]] = body["content"]
    done("W", json.dumps({"success": True}))

if tool == "kubectl":
    c = cluster_of(opt("--kubeconfig"))
    if c is None:
        done("R", code=1)
    cmd = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--kubeconfig":
            skip = True
        elif not a.startswith("--kubeconfig="):
            cmd.append(a)
    verb = cmd[0] if cmd[0] != "--namespace" else cmd[2]
    target = opt("-f")
    if verb == "apply":
        app = os.path.basename(target) if os.path.isdir(target) else os.path.basename(os.path.dirname(target))
        if os.path.basename(target) == "app-of-apps":
            c["app_of_apps"] = True
        elif os.path.isdir(target):
            c["applied"] = sorted(set(c["applied"]) | {app})
            if app == "capi":
                c["cluster_object"] = True
        done("W")
    if verb == "diff":
        done("R", code=0 if os.path.basename(target) in c["applied"] else 1)
    if verb == "rollout":
        done("R", code=0 if os.path.basename(os.path.dirname(target)) in c["applied"] else 1)
    if verb == "wait":
        if "--for=condition=Available" in args and target and os.path.isfile(target):
            done("R", code=0 if os.path.basename(os.path.dirname(target)) in c["applied"] else 1)
        done("R")
    if verb == "create":
        c["namespaces"].append(cmd[2])
        done("W")
    if verb in ("annotate", "drain", "uncordon"):
        done("W")
    if verb == "exec":
        done("R")
    if verb == "get":
        what = cmd[1]
        ns = opt("--namespace")
        if what.startswith("--raw"):
            ok = open(opt("--kubeconfig")).read().strip() == "workload"
            done("R", "ok" if ok else "", 0 if ok else 1)
        if what == "namespace":
            ok = cmd[2] in c["namespaces"]
            done("R", "namespace/x\n" if ok else "", 0 if ok else 1)
        if what == "deployments":
            done("R", "deployment.apps/controller\n" if c["providers"] else "")
        if what == "secret":
            ok = f"{ns}/{cmd[4]}" in c["secrets"]
            done("R", "secret/x\n" if ok else "", 0 if ok else 1)
        if what == "clusters.cluster.x-k8s.io":
            done("R", "cluster/x\n" if c["cluster_object"] else "", 0 if c["cluster_object"] else 1)
        if what == "applications.argoproj.io":
            done("R", "application/apps\n" if c["app_of_apps"] else "", 0 if c["app_of_apps"] else 1)
        if what == "machines.cluster.x-k8s.io":
            if "-l" in cmd:
                # The server takes a few polls to appear.
                if c["cluster_object"]:
                    world["machine_polls"] = world.get("machine_polls", 0) + 1
                up = c["cluster_object"] and world.get("machine_polls", 0) > 2
                done("R", "203.0.113.10\n" if up else "")
            done("R", "".join(f"{n['machine']} {n['name']}\n" for n in world.get("nodes", [])))
        if what == "nodes":
            sel = opt("-l")
            cp = not sel.startswith("!")
            done("R", "".join(n["name"] + "\n" for n in world.get("nodes", []) if n["cp"] == cp))
        if what == "node":
            node = next(n for n in world["nodes"] if n["name"] == cmd[2])
            path = opt("-o")
            if "ExternalIP" in path:
                done("R", node["ip"] + "\n")
            if "architecture" in path:
                done("R", node["arch"])
            if "Ready" in path:
                done("R", "True")
    done("R")

if tool == "ssh":
    dest = next(a for a in args if a.startswith("root@"))
    ip = dest[5:]
    rest = args[args.index(dest) + 1:]
    host = world.setdefault("hosts", {}).setdefault(ip, {"current": "/nix/store/old", "profile": "/nix/store/old", "boot": 1})
    if rest[:2] == ["readlink", "-f"] and rest[2] == "/run/current-system":
        done("R", host["current"] + "\n")
    if rest[:2] == ["readlink", "-f"]:
        done("R", "".join(("/nix/store/k-old" if p.startswith("/run/booted-system") else "/nix/store/k-new") + "\n" for p in rest[2:]))
    if rest[0] == "nix-env":
        host["profile"] = rest[-1]
        done("W")
    if rest[0] == "cat":
        done("R", f"boot-{host['boot']}\n")
    if rest[:1] == ["systemctl"]:
        host["boot"] += 1
        host["current"] = host["profile"]
        done("W", code=255)
    if rest[0].endswith("switch-to-configuration"):
        done("W")
    done("R")

done("R")
