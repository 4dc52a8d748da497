#!/usr/bin/env python3
"""Write a CycloneDX 1.5 SBOM (JSON) of the xnai image: what build-image.sh put into it.

Why: supply-chain checks want to know every piece of code a shipped image runs. The image holds
three Rust binaries, the shared libraries `ldd` listed for them and the llama.cpp the worker links
statically. This lists:
  * every crate compiled into those binaries (the normal and build dependency closure of the
    workspace packages that make them, from `cargo metadata --locked`), each with its Cargo.lock
    version, a package URL and the registry checksum Cargo.lock records;
  * llama.cpp and ggml, vendored in the `llama-cpp-sys-2` crate (version, the crate's upstream
    commit, and a SHA-256 over the vendored source tree);
  * every file copied into the root filesystem (binaries and libraries) with its SHA-256, and for
    libraries the Debian package that ships them (name and version from dpkg).

Standard library only (runs anywhere build-image.sh runs). Usage:
  sbom.py --repo DIR --rootfs DIR --lib PATH... --bin NAME... --out FILE
"""

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid

# Workspace packages whose binaries go into the image.
IMAGE_PACKAGES = ("xnai-head", "xnai-worker", "xnai-cli")


def die(msg):
    print(f"error: sbom: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(root):
    """One digest over a source tree: every regular file's relative path and content, sorted."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            h.update(os.path.relpath(p, root).encode() + b"\0")
            h.update(bytes.fromhex(sha256_file(p)))
    return h.hexdigest()


def cargo_metadata(repo):
    out = subprocess.run(
        ["cargo", "metadata", "--locked", "--offline", "--format-version", "1"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        out = subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            cwd=repo,
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        die(f"cargo metadata failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def lock_checksums(repo):
    """(name, version) -> checksum from Cargo.lock (tomllib is in Python 3.11+)."""
    try:
        import tomllib
    except ImportError:
        return {}
    with open(os.path.join(repo, "Cargo.lock"), "rb") as f:
        lock = tomllib.load(f)
    return {(p["name"], p["version"]): p.get("checksum") for p in lock.get("package", [])}


def image_closure(meta):
    """Package ids compiled into the image binaries: normal and build edges, no dev edges."""
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    pkgs = {p["id"]: p for p in meta["packages"]}
    roots = [p["id"] for p in meta["packages"] if p["name"] in IMAGE_PACKAGES]
    missing = set(IMAGE_PACKAGES) - {pkgs[r]["name"] for r in roots}
    if missing:
        die(f"workspace has no package {sorted(missing)}")
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            kinds = {k.get("kind") for k in dep.get("dep_kinds", [])}
            if kinds - {"dev"}:
                todo.append(dep["pkg"])
    return [pkgs[i] for i in sorted(seen)]


def crate_component(pkg, checksums):
    local = pkg.get("source") is None
    purl = f"pkg:cargo/{pkg['name']}@{pkg['version']}"
    c = {
        "type": "application" if pkg["name"] in IMAGE_PACKAGES else "library",
        "bom-ref": purl,
        "name": pkg["name"],
        "version": pkg["version"],
        "purl": purl,
    }
    if pkg.get("license"):
        c["licenses"] = [{"expression": pkg["license"]}]
    digest = checksums.get((pkg["name"], pkg["version"]))
    if digest:
        c["hashes"] = [{"alg": "SHA-256", "content": digest}]
    # The source kind only: registry URLs are the build machine's business, not the image's.
    source = "workspace" if local else pkg["source"].split("+", 1)[0]
    c["properties"] = [{"name": "xnai:source", "value": source}]
    return c


def llama_components(meta):
    sys_pkg = next((p for p in meta["packages"] if p["name"] == "llama-cpp-sys-2"), None)
    if sys_pkg is None:
        die("llama-cpp-sys-2 is not in the dependency graph")
    crate_dir = os.path.dirname(sys_pkg["manifest_path"])
    src = os.path.join(crate_dir, "llama.cpp")
    if not os.path.isdir(src):
        die(f"no vendored llama.cpp in {crate_dir}")
    upstream = ""
    vcs = os.path.join(crate_dir, ".cargo_vcs_info.json")
    if os.path.exists(vcs):
        with open(vcs) as f:
            upstream = json.load(f).get("git", {}).get("sha1", "")
    ggml_version = ""
    with open(os.path.join(src, "ggml", "CMakeLists.txt")) as f:
        parts = {}
        for line in f:
            for key in ("MAJOR", "MINOR", "PATCH"):
                tag = f"set(GGML_VERSION_{key} "
                if line.strip().startswith(tag):
                    parts[key] = line.strip()[len(tag) :].rstrip(")").strip()
        if len(parts) == 3:
            ggml_version = f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"
    version = f"vendored-in-llama-cpp-sys-2-{sys_pkg['version']}"
    props = [
        {"name": "xnai:vendored-in", "value": f"pkg:cargo/llama-cpp-sys-2@{sys_pkg['version']}"},
        {"name": "xnai:linked", "value": "statically into xnai-worker (CPU build)"},
    ]
    if upstream:
        props.append({"name": "xnai:llama-cpp-rs-commit", "value": upstream})
    tree = sha256_tree(src)
    llama = {
        "type": "library",
        "bom-ref": "llama.cpp",
        "name": "llama.cpp",
        "version": version,
        "licenses": [{"license": {"id": "MIT"}}],
        "hashes": [{"alg": "SHA-256", "content": tree}],
        "properties": props + [{"name": "xnai:hash-of", "value": "vendored source tree"}],
    }
    ggml = {
        "type": "library",
        "bom-ref": "ggml",
        "name": "ggml",
        "version": ggml_version or version,
        "licenses": [{"license": {"id": "MIT"}}],
        "properties": props,
    }
    return [llama, ggml]


def deb_package(path):
    """(package, version) that ships `path`, trying the usr-merged spellings."""
    candidates = [path, os.path.realpath(path)]
    if path.startswith("/lib"):
        candidates.append("/usr" + path)
    for p in candidates:
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0 and ":" in out.stdout:
            pkg = out.stdout.split(":", 1)[0].split(",")[0].strip()
            ver = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True
            )
            return pkg, ver.stdout.strip() if ver.returncode == 0 else ""
    return None, None


def file_component(rootfs, path, kind):
    full = os.path.join(rootfs, path.lstrip("/"))
    if not os.path.isfile(full):
        die(f"{full} is not in the image root filesystem")
    c = {
        "type": "file",
        "bom-ref": f"file:{path}",
        "name": path,
        "hashes": [{"alg": "SHA-256", "content": sha256_file(full)}],
        "properties": [{"name": "xnai:kind", "value": kind}],
    }
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--bin", action="append", default=[], help="binary name under /usr/local/bin")
    ap.add_argument("--lib", action="append", default=[], help="library path as in the image")
    ap.add_argument("--image", default="xnai")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    meta = cargo_metadata(a.repo)
    checksums = lock_checksums(a.repo)
    components = [crate_component(p, checksums) for p in image_closure(meta)]
    components += llama_components(meta)
    debs = {}
    for lib in sorted(set(a.lib)):
        comp = file_component(a.rootfs, lib, "shared library")
        pkg, ver = deb_package(lib)
        if pkg:
            comp["properties"].append({"name": "xnai:debian-package", "value": f"{pkg} {ver}"})
            debs[pkg] = ver
        components.append(comp)
    for pkg, ver in sorted(debs.items()):
        purl = f"pkg:deb/debian/{pkg}@{ver}?arch=amd64"
        components.append(
            {"type": "library", "bom-ref": purl, "name": pkg, "version": ver, "purl": purl}
        )
    for b in a.bin:
        components.append(file_component(a.rootfs, f"/usr/local/bin/{b}", "executable"))

    workspace_version = next(
        (p["version"] for p in meta["packages"] if p["name"] == "xnai-head"), "0.0.0"
    )
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tools": {"components": [{"type": "application", "name": "xnai deploy/sbom.py"}]},
            "component": {
                "type": "container",
                "bom-ref": a.image,
                "name": a.image,
                "version": workspace_version,
            },
        },
        "components": components,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(bom, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, a.out)
    crates = sum(1 for c in components if c.get("purl", "").startswith("pkg:cargo/"))
    print(f"sbom: {crates} crates, llama.cpp, {len(debs)} Debian packages -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
