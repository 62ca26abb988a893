#!/usr/bin/env python3
"""Helpers for `scripts/bench apps` (standard library only).

  bench-apps.py hoist-args DOCKERFILE      hoist build options equivalent to the Dockerfile's
                                           final stage, one per line
  bench-apps.py blobs REGISTRY_DATA_DIR    "COUNT BYTES" of the blobs a registry stores
  bench-apps.py image HOST:PORT REPO TAG   "LAYERS COMPRESSED UNCOMPRESSED" of a pushed image
                                           (layers read back from the registry and gunzipped)
  bench-apps.py source-file DIR            the app's entry file (from the Dockerfile's CMD; for
                                           a built app its page or src/ entry)
  bench-apps.py touch-source DIR TEXT      append a comment line to that file
  bench-apps.py add-dep DIR                add one dependency: npm kleur@4.1.5 (package.json
                                           and package-lock.json), pip six==1.16.0
  bench-apps.py report RAW.tsv OUT.md OUT.svg HEADER.txt
                                           the markdown table and the SVG chart
"""

import json
import os
import shlex
import statistics
import sys
import urllib.request
import zlib

# ---------------------------------------------------------------------------------------------
# Dockerfile -> hoist options


def instructions(path):
    """(KEYWORD, rest) for each instruction, continuation lines joined, comments dropped."""
    out, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            key, _, rest = cur.strip().partition(" ")
            out.append((key.upper(), rest.strip()))
            cur = ""
    if cur.strip():
        key, _, rest = cur.strip().partition(" ")
        out.append((key.upper(), rest.strip()))
    return out


def final_stage(path):
    ins = instructions(path)
    last = max(i for i, (k, _) in enumerate(ins) if k == "FROM")
    return ins[last + 1:]


def command(rest):
    """A CMD/ENTRYPOINT/HEALTHCHECK CMD argument as a JSON array (shell form -> sh -c)."""
    rest = rest.strip()
    if rest.startswith("["):
        return json.loads(rest)
    return ["/bin/sh", "-c", rest]


def hoist_args(path):
    args = []
    for key, rest in final_stage(path):
        if key == "ENV":
            words = shlex.split(rest)
            if words and "=" not in words[0]:  # legacy `ENV K V`
                args += ["--env", words[0] + "=" + " ".join(words[1:])]
            else:
                for w in words:
                    args += ["--env", w]
        elif key == "WORKDIR":
            args += ["--workdir", rest]
        elif key == "EXPOSE":
            for p in rest.split():
                args += ["--expose", p]
        elif key == "CMD":
            args += ["--cmd", json.dumps(command(rest))]
        elif key == "ENTRYPOINT":
            args += ["--entrypoint", json.dumps(command(rest))]
        elif key == "LABEL":
            for w in shlex.split(rest):
                args += ["--label", w]
        elif key == "STOPSIGNAL":
            args += ["--stop-signal", rest]
        elif key == "HEALTHCHECK":
            words = rest.split()
            i = 0
            opts = {}
            while i < len(words) and words[i].startswith("--"):
                k, _, v = words[i][2:].partition("=")
                opts[k] = v
                i += 1
            if i < len(words) and words[i].upper() == "CMD":
                cmd_text = rest.split(None, i + 1)[i + 1] if len(words) > i + 1 else ""
                args += ["--healthcheck", json.dumps(command(cmd_text))]
                for k in ("interval", "timeout", "retries"):
                    if k in opts:
                        args += ["--healthcheck-" + k, opts[k]]
                # hoist has no --healthcheck-start-period: start-period is left out
        elif key == "RUN" and "useradd" in rest:
            words = shlex.split(rest.replace("&&", " && "))
            j = words.index("useradd")
            uid = gid = None
            name = None
            k = j + 1
            while k < len(words) and words[k] != "&&":
                w = words[k]
                if w in ("--uid", "-u"):
                    uid = words[k + 1]
                    k += 2
                    continue
                if w in ("--gid", "-g"):
                    gid = words[k + 1]
                    k += 2
                    continue
                if w.startswith("-"):
                    k += 2 if w in ("--home-dir", "-d", "--shell", "-s", "--comment", "-c",
                                    "--groups", "-G", "--key", "-K") else 1
                    continue
                name = w
                k += 1
            user = name or "app"
            if uid:
                user += ":" + uid
                if gid:
                    user += ":" + gid
            args += ["--user", user]
    return args


# ---------------------------------------------------------------------------------------------
# registry figures


def blobs(data_dir):
    root = os.path.join(data_dir, "docker", "registry", "v2", "blobs")
    count = size = 0
    for d, _, files in os.walk(root):
        if "data" in files:
            count += 1
            size += os.path.getsize(os.path.join(d, "data"))
    return count, size


ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def get(url, accept=None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(req, timeout=60)


def image(hostport, repo, tag):
    base = "http://%s/v2/%s" % (hostport, repo)
    manifest = json.load(get("%s/manifests/%s" % (base, tag), ACCEPT))
    layers = manifest["layers"]
    compressed = sum(l["size"] for l in layers)
    uncompressed = 0
    for l in layers:
        resp = get("%s/blobs/%s" % (base, l["digest"]))
        mt = l.get("mediaType", "")
        if "zstd" in mt:
            raise SystemExit("bench-apps: zstd layers are not measured")
        gz = "gzip" in mt or mt.endswith(".tar.gzip") or mt == \
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        d = zlib.decompressobj(16 + zlib.MAX_WBITS) if gz else None
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            if d:
                uncompressed += len(d.decompress(chunk))
                while d.unused_data:  # concatenated gzip members
                    rest = d.unused_data
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    uncompressed += len(d.decompress(rest))
            else:
                uncompressed += len(chunk)
        if d:
            uncompressed += len(d.flush())
    return len(layers), compressed, uncompressed


# ---------------------------------------------------------------------------------------------
# app changes


# Where the code is when the CMD runs a built file (server.js out of `next build`, dist/ out
# of tsc): the first of these the app has.
BUILT_SOURCES = ("app/page.js", "app/page.jsx", "app/page.tsx", "pages/index.js",
                 "src/server.ts", "src/index.ts", "src/main.ts")


def source_file(app):
    df = os.path.join(app, "Dockerfile")
    cmd = []
    for key, rest in final_stage(df):
        if key in ("CMD", "ENTRYPOINT"):
            cmd = command(rest) if key == "CMD" else command(rest) + cmd
    for w in reversed(cmd):
        if os.path.isfile(os.path.join(app, w)):
            return w
    for w in BUILT_SOURCES:
        if os.path.isfile(os.path.join(app, w)):
            return w
    raise SystemExit("bench-apps: no source file named in %s's CMD, and none of %s"
                     % (df, ", ".join(BUILT_SOURCES)))


def touch_source(app, text):
    name = source_file(app)
    mark = "//" if name.endswith((".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx")) else "#"
    with open(os.path.join(app, name), "a", encoding="utf-8") as f:
        f.write("%s %s\n" % (mark, text))


KLEUR = {
    "version": "4.1.5",
    "resolved": "https://registry.npmjs.org/kleur/-/kleur-4.1.5.tgz",
    "integrity": "sha512-o+NO+8WrRiQEE4/7nwRJhN1HWpVmJm511pBHUxPLtp0BUISzlBplORYSmTclCnJvQq2tKu/"
                 "sgl3xVpkc7ZWuQQ==",
    "license": "MIT",
    "engines": {"node": ">=6"},
}


def add_dep(app):
    lock = os.path.join(app, "package-lock.json")
    req = os.path.join(app, "requirements.txt")
    if os.path.isfile(lock):
        with open(os.path.join(app, "package.json"), encoding="utf-8") as f:
            pkg = json.load(f)
        with open(lock, encoding="utf-8") as f:
            lk = json.load(f)
        if "node_modules/kleur" in lk.get("packages", {}):
            raise SystemExit("bench-apps: %s already has kleur" % app)
        pkg.setdefault("dependencies", {})["kleur"] = "^4.1.5"
        lk["packages"][""].setdefault("dependencies", {})["kleur"] = "^4.1.5"
        lk["packages"]["node_modules/kleur"] = KLEUR
        lk["packages"] = dict(sorted(lk["packages"].items(), key=lambda kv: (kv[0] != "", kv[0])))
        for path, obj in (("package.json", pkg), ("package-lock.json", lk)):
            with open(os.path.join(app, path), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        return "npm: kleur@4.1.5"
    if os.path.isfile(req):
        with open(req, encoding="utf-8") as f:
            if any(l.strip().lower().startswith("six") for l in f):
                raise SystemExit("bench-apps: %s already has six" % req)
        with open(req, "a", encoding="utf-8") as f:
            f.write("six==1.16.0\n")
        return "pip: six==1.16.0"
    raise SystemExit("bench-apps: %s has neither package-lock.json nor requirements.txt" % app)


# ---------------------------------------------------------------------------------------------
# report

SCENARIOS = [("cold", "cold"), ("nochange", "no change"), ("source", "source changed"),
             ("dep", "dependency changed")]
TOOLS = [("hoist-f", "hoist build -f Dockerfile"), ("hoist", "hoist (flags or hoist.toml)"),
         ("docker", "docker build (BuildKit)"), ("buildah", "buildah bud --layers")]
HOISTS = ("hoist-f", "hoist")
COLOURS = {"hoist-f": "#1b4f8a", "hoist": "#2b7bb9", "docker": "#e07b39", "buildah": "#5a9e4b"}
NOQEMU = "peer needs QEMU, absent"


def human(n):
    n = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return ("%.0f %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1000
    return str(n)


def load(raw):
    runs, images, loads, phases = {}, {}, {}, {}
    with open(raw, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "run":
                # run app scenario tool n status secs peak_kb blobs bytes
                _, app, sc, tool, n, status, secs, kb, nb, by = p
                runs.setdefault((app, sc, tool), []).append(
                    dict(ok=status == "ok", status=status, secs=float(secs or 0), kb=int(kb or 0),
                         blobs=int(nb or 0), bytes=int(by or 0)))
            elif p[0] == "phase":
                _, app, sc, tool, n, name, secs = p
                phases.setdefault((app, sc, tool, name), []).append(float(secs))
            elif p[0] == "image":
                _, app, tool, layers, comp, unc = p
                images[(app, tool)] = (int(layers), int(comp), int(unc))
            elif p[0] == "load":
                _, app, tool, status = p
                loads[(app, tool)] = status
    return runs, images, loads, phases


def summary(rs):
    ok = [r for r in rs if r["ok"]]
    if not ok:
        return None
    t = sorted(r["secs"] for r in ok)
    return dict(med=statistics.median(t), lo=t[0], hi=t[-1], n=len(ok), total=len(rs),
                kb=statistics.median(r["kb"] for r in ok),
                bytes=statistics.median(r["bytes"] for r in ok),
                blobs=statistics.median(r["blobs"] for r in ok))


def report(raw, md_out, svg_out, header):
    runs, images, loads, phases = load(raw)
    apps = []
    for (app, _, _) in runs:
        if app not in apps:
            apps.append(app)
    lines = []
    with open(header, encoding="utf-8") as f:
        lines.append(f.read().rstrip("\n"))
    lines.append("")
    hoists = [h for h in HOISTS if any(k[2] == h for k in runs)]
    lines.append("| app | scenario | tool | wall time, median (min–max) | %s"
                 "of which build + archive + push | peak memory | uploaded to the registry |"
                 % "".join("%s / tool | " % h for h in hoists))
    lines.append("| --- | --- | --- | --- | %s--- | ---: | ---: |" % ("---: | " * len(hoists)))
    blank = "| " * len(hoists)
    sums = {}
    for app in apps:
        for sc, sc_name in SCENARIOS:
            hs = [summary(runs.get((app, sc, h), [])) for h in hoists]
            for tool, tool_name in TOOLS:
                rs = runs.get((app, sc, tool), [])
                s = summary(rs)
                if not rs:
                    continue
                sums[(app, sc, tool)] = s
                if s is None and all(r["status"] == "noqemu" for r in rs):
                    sums[(app, sc, tool)] = NOQEMU
                    lines.append("| %s | %s | %s | %s | %s| | |" % (
                        app, sc_name, tool_name, NOQEMU, blank))
                    continue
                if s is None:
                    lines.append("| %s | %s | %s | **failed** (%d of %d runs) | %s| | |" % (
                        app, sc_name, tool_name, len(rs), len(rs), blank))
                    continue
                failed = "" if s["n"] == s["total"] else " **%d of %d runs failed**" % (
                    s["total"] - s["n"], s["total"])
                ratio = "".join("%s | " % ("" if h is None else "%.2f" % (h["med"] / s["med"]))
                                for h in hs)
                parts = [phases.get((app, sc, tool, ph)) for ph in ("build", "archive", "push")]
                split = " + ".join("%.2f" % statistics.median(x) for x in parts) \
                    if all(parts) else "one command"
                lines.append("| %s | %s | %s | %.2f s (%.2f–%.2f)%s | %s%s | %s | %s in %d blobs |" % (
                    app, sc_name, tool_name, s["med"], s["lo"], s["hi"], failed, ratio, split,
                    human(s["kb"] * 1024).replace("kB", "kB"), human(s["bytes"]), s["blobs"]))
    lines.append("")
    lines.append("Images (as pushed after the cold build; uncompressed = the layers gunzipped):")
    lines.append("")
    lines.append("| app | tool | layers | compressed | uncompressed | archive loads in podman |")
    lines.append("| --- | --- | ---: | ---: | ---: | --- |")
    for app in apps:
        for tool, tool_name in TOOLS:
            if (app, tool) in images:
                n, c, u = images[(app, tool)]
                lines.append("| %s | %s | %d | %s | %s | %s |" % (
                    app, tool_name, n, human(c), human(u), loads.get((app, tool), "not checked")))
    text = "\n".join(lines) + "\n"
    with open(md_out, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    with open(svg_out, "w", encoding="utf-8") as f:
        f.write(chart(apps, sums))


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chart(apps, sums):
    """Grouped bars: one panel per app, a group per scenario, a bar per tool (median), a
    whisker from min to max; log-free linear scale per panel."""
    pw, ph = 560, 300          # panel size
    ml, mt, mb = 60, 40, 60    # margins
    width = ml + pw + 30
    height = len(apps) * (ph + mt + mb) + 50
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>']
    # legend
    x = ml
    for tool, name in TOOLS:
        out.append('<rect x="%d" y="12" width="12" height="12" fill="%s"/>' % (x, COLOURS[tool]))
        out.append('<text x="%d" y="22">%s</text>' % (x + 16, esc(name)))
        x += 30 + 7 * len(name)
    for i, app in enumerate(apps):
        top = 50 + i * (ph + mt + mb) + mt
        vals = [s["hi"] for (a, _, _), s in sums.items() if a == app and isinstance(s, dict)]
        vmax = max(vals) if vals else 1.0
        step = nice_step(vmax)
        vmax = step * (int(vmax / step) + 1)
        out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s: wall time '
                   '(s), median with min–max</text>' % (ml, top - 12, esc(app)))
        # axis and grid
        v = 0.0
        while v <= vmax + 1e-9:
            y = top + ph - v / vmax * ph
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (
                ml, ml + pw, y, y))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (ml - 6, y + 4, v))
            v += step
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>' % (
            ml, ml + pw, top + ph, top + ph))
        tools = [t for t in TOOLS if any(k[0] == app and k[2] == t[0] for k in sums)]
        gw = pw / len(SCENARIOS)
        bw = gw / (len(tools) + 1.5)
        for j, (sc, sc_name) in enumerate(SCENARIOS):
            gx = ml + j * gw + bw * 0.75
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (
                ml + j * gw + gw / 2, top + ph + 18, esc(sc_name)))
            for k, (tool, _) in enumerate(tools):
                s = sums.get((app, sc, tool))
                bx = gx + k * bw
                if not isinstance(s, dict):
                    out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="red" '
                               'font-size="9">%s</text>' % (
                                   bx + bw / 2, top + ph - 4, "no QEMU" if s else "failed"))
                    continue
                h = s["med"] / vmax * ph
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                           '<title>%s %s: %.2f s (%.2f–%.2f)</title></rect>' % (
                               bx, top + ph - h, bw - 2, h, COLOURS[tool], tool, sc_name,
                               s["med"], s["lo"], s["hi"]))
                cx = bx + (bw - 2) / 2
                ylo = top + ph - s["lo"] / vmax * ph
                yhi = top + ph - s["hi"] / vmax * ph
                out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>' % (
                    cx, cx, ylo, yhi))
                for yy in (ylo, yhi):
                    out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>'
                               % (cx - 3, cx + 3, yy, yy))
                label = "%.1f" % s["med"] if s["med"] >= 1 else "%.2f" % s["med"]
                out.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s'
                           '</text>' % (cx, min(top + ph - h, yhi) - 4, label))
        out.append('<text x="%d" y="%d" font-size="10" fill="#555">%s</text>' % (
            ml, top + ph + 40, "each build: build + archive podman can load + push to a "
            "local registry"))
    out.append("</svg>\n")
    return "\n".join(out)


def nice_step(vmax):
    for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100):
        if vmax / s <= 8:
            return s
    return 200


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "hoist-args":
        print("\n".join(hoist_args(argv[2])))
    elif cmd == "blobs":
        print("%d %d" % blobs(argv[2]))
    elif cmd == "image":
        print("%d %d %d" % image(argv[2], argv[3], argv[4]))
    elif cmd == "source-file":
        print(source_file(argv[2]))
    elif cmd == "touch-source":
        touch_source(argv[2], argv[3])
    elif cmd == "add-dep":
        print(add_dep(argv[2]))
    elif cmd == "report":
        report(argv[2], argv[3], argv[4], argv[5])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
