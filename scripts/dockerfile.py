#!/usr/bin/env python3
"""Replays Basalt's Dockerfile without a Docker engine, for scripts/check-container.sh.

It reads the Dockerfile itself (so the check cannot drift from it) and does what a builder
would, close enough to catch a missing file, a broken manifest, a missing shared library or a
wrong path:

  build    assembles the build stage's context (the files its COPY lines name, as a clean
           checkout has them, less what .dockerignore excludes) in a directory standing for
           its WORKDIR, and runs its RUN lines there on this machine (`--check` turns
           `cargo build` into `cargo check`, and fails if the final build kept a library
           as an earlier RUN's stub left it). Beside the directory it leaves OUT.cargo,
           the cargo commands as written, and OUT.workdir.
  key      prints the runtime stage's Debian suite and a hash of the instructions that make
           up its cached base (everything before its first COPY).
  base     runs those instructions in a root filesystem (RUN through chroot, as root).
  apply    runs the rest of the runtime stage (COPY, COPY --from=build, RUN, WORKDIR) in a
           copy of that root.
  config   prints the image's configuration (ENV, USER, WORKDIR, HEALTHCHECK, ENTRYPOINT +
           CMD, EXPOSE) as bash assignments for `eval`.

Supported (and anything else is refused with a message, rather than guessed): parser
directives (syntax; escape must stay `\\`), comments, line continuations, ARG/ENV with
${VAR}, ${VAR:-x} and ${VAR:+x} substitution where Docker does it, FROM ... AS, WORKDIR,
COPY [--from] [--chown] [--chmod] [--link] (shell and JSON forms, `*`/`?`/`[...]` globs), RUN
(shell and JSON forms, no --mount, no heredocs), USER, ENV, EXPOSE, HEALTHCHECK, ENTRYPOINT,
CMD, LABEL, STOPSIGNAL. .dockerignore: Docker's rules (a pattern also excludes everything under
a matching directory, `**` spans directories, `!` re-includes, the last matching line wins),
one path segment matched like Go's filepath.Match (character-class corner cases aside).

Build-stage RUN lines run on the CI host, so they may only use relative paths under WORKDIR
(an absolute path is refused): that covers cargo and the stub files of the dependency layer.
The build stage's `target/` is a symlink to $CARGO_TARGET_DIR, so builds share the CI's
compiled dependencies, and `COPY --from=build /src/target/...` reads from there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bumped when what `base` does changes, so cached roots made by an older script are rebuilt.
BASE_FORMAT = "1"


class Refused(Exception):
    """Something this replay does not support or that Docker would refuse too."""


def fail(msg: str) -> None:
    raise Refused(msg)


# --- Parsing ---------------------------------------------------------------------------------


@dataclass
class Instruction:
    line: int
    cmd: str  # upper case
    text: str  # the arguments, continuation lines joined
    flags: dict[str, str] = field(default_factory=dict)

    def show(self) -> str:
        return f"Dockerfile:{self.line}: {self.cmd} {self.text}"


@dataclass
class Stage:
    index: int
    image: str
    name: str | None
    instructions: list[Instruction]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    lines = path.read_text().splitlines()
    i = 0
    # Parser directives: `# key=value` lines at the very top.
    while i < len(lines):
        m = re.match(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", lines[i])
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) != "\\":
            fail("only the default escape character (\\) is supported")
        i += 1
    instructions: list[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        text = raw
        while text.rstrip().endswith("\\"):
            text = text.rstrip()[:-1]
            # Comment and empty lines inside a continuation are dropped, as Docker does.
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            text += lines[i]
            i += 1
        word, _, rest = text.strip().partition(" ")
        instructions.append(Instruction(start, word.upper(), rest.strip()))

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            parts = ins.text.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = None
            if len(parts) == 3 and parts[1].lower() == "as":
                name = parts[2]
            elif len(parts) != 1:
                fail(f"{ins.show()}: expected FROM image [AS name]")
            image = substitute(parts[0], global_args)
            stages.append(Stage(len(stages), image, name, []))
        elif not stages:
            if ins.cmd != "ARG":
                fail(f"{ins.show()}: only ARG may come before the first FROM")
            k, v = parse_arg(ins.text)
            global_args[k] = v if v is not None else ""
        else:
            if ins.cmd in ("RUN", "COPY", "ADD"):
                split_flags(ins)
            stages[-1].instructions.append(ins)
    if not stages:
        fail("no FROM in the Dockerfile")
    return global_args, stages


def split_flags(ins: Instruction) -> None:
    while ins.text.startswith("--"):
        flag, _, rest = ins.text.partition(" ")
        key, _, value = flag[2:].partition("=")
        ins.flags[key] = value
        ins.text = rest.strip()


def parse_arg(text: str) -> tuple[str, str | None]:
    name, eq, value = text.partition("=")
    if not eq:
        return name.strip(), None
    words = shlex.split(value) if value else [""]
    return name.strip(), words[0] if words else ""


def parse_env(text: str, env: dict[str, str]) -> list[tuple[str, str]]:
    words = shlex.split(text, posix=True)
    if words and "=" not in words[0]:
        # Legacy form: ENV KEY value with spaces
        return [(words[0], substitute(text.split(None, 1)[1], env) if len(words) > 1 else "")]
    pairs = []
    scope = dict(env)
    for w in words:
        k, eq, v = w.partition("=")
        if not eq:
            fail(f"ENV {text}: `{w}` is not KEY=value")
        v = substitute(v, scope)
        pairs.append((k, v))
    return pairs


def substitute(text: str, env: dict[str, str]) -> str:
    """$VAR, ${VAR}, ${VAR:-default}, ${VAR:+alternative}, as the Dockerfile does them."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        op, word = m.group(3), m.group(4)
        value = env.get(name or "", "")
        if op == ":-":
            return value or substitute(word, env)
        if op == ":+":
            return substitute(word, env) if value else ""
        return value

    return re.sub(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\})", repl, text)


def json_form(text: str) -> list[str] | None:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return None


# --- The build context -----------------------------------------------------------------------


class Context:
    """The files a builder can see: a clean checkout's files (git's index when this is a git
    work tree, since `docker build` in a fresh clone sees nothing else) less .dockerignore."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.patterns = self._ignore_patterns()
        listed = self._listed_files()
        self.files = sorted(p for p in listed if not self.ignored(p))
        self.dirs = set()
        for f in self.files:
            parent = PurePosixPath(f).parent
            while str(parent) != ".":
                self.dirs.add(str(parent))
                parent = parent.parent

    def _listed_files(self) -> list[str]:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.root), "ls-files", "-z", "--cached"],
                check=True, capture_output=True,
            ).stdout
            files = [f for f in out.decode().split("\0") if f]
            # Deleted in the work tree but still in the index: the checkout would not have it.
            return [f for f in files if os.path.lexists(self.root / f)]
        except (subprocess.CalledProcessError, FileNotFoundError):
            return [
                str(p.relative_to(self.root))
                for p in self.root.rglob("*")
                if not p.is_dir() or p.is_symlink()
            ]

    def _ignore_patterns(self) -> list[tuple[bool, re.Pattern[str]]]:
        path = self.root / ".dockerignore"
        if not path.exists():
            return []
        patterns = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            line = line.lstrip("!").strip()
            line = os.path.normpath(line).lstrip("/")
            if line in ("", "."):
                continue
            patterns.append((exclude, re.compile(glob_regex(line))))
        return patterns

    def ignored(self, rel: str) -> bool:
        # Docker's rule: a pattern matches a path or any directory above it; the last pattern
        # that matches decides.
        result = False
        parents = [str(p) for p in reversed(PurePosixPath(rel).parents) if str(p) != "."]
        for exclude, rx in self.patterns:
            if rx.fullmatch(rel) or any(rx.fullmatch(p) for p in parents):
                result = exclude
        return result

    def sources(self, spec: str) -> list[str]:
        """Context paths (files or directories) a COPY source names."""
        spec = os.path.normpath(spec.lstrip("/")) if spec.strip("/") else "."
        if spec == ".":
            return ["."]
        if any(c in spec for c in "*?["):
            rx = re.compile(glob_regex(spec))
            found = [p for p in sorted(set(self.files) | self.dirs) if rx.fullmatch(p)]
        else:
            found = [spec] if spec in self.files or spec in self.dirs else []
        if not found:
            fail(
                f"COPY {spec}: not found in the build context (missing from the checkout, or "
                "excluded by .dockerignore)"
            )
        return found

    def files_under(self, src: str) -> list[tuple[str, str]]:
        """(context path, path relative to the source) for a file or a directory's files."""
        if src in self.files:
            return [(src, PurePosixPath(src).name)]
        prefix = "" if src == "." else src + "/"
        return [(f, f[len(prefix):]) for f in self.files if f.startswith(prefix)]


def glob_regex(pattern: str) -> str:
    """A .dockerignore or COPY glob as a regex over `/`-separated paths: `*`, `?` and
    `[...]` stay within one segment, a `**` segment spans any number of them."""
    out = []
    segments = pattern.split("/")
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        if seg == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        i = 0
        while i < len(seg):
            c = seg[i]
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "\\" and i + 1 < len(seg):
                i += 1
                out.append(re.escape(seg[i]))
            elif c == "[" and "]" in seg[i + 2 :]:
                end = seg.index("]", i + 2)
                body = seg[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
            else:
                out.append(re.escape(c))
            i += 1
        if not last:
            out.append("/")
    return "".join(out)


def copy_file(src: Path, dst: Path, owner: tuple[int, int] | None, mode: int | None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        else:
            dst.unlink()
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        # copy2 keeps the modification time, as COPY does: the dependency layer relies on it.
        shutil.copy2(src, dst)
        if mode is not None:
            os.chmod(dst, mode)
    if owner is not None:
        os.lchown(dst, *owner)


def copy_into(
    sources: list[tuple[Path, list[tuple[str, str]], bool]],
    dest: str,
    resolve,
    owner: tuple[int, int] | None = None,
    mode: int | None = None,
) -> None:
    """Docker's COPY rules: a directory's contents go into dest; a file goes to dest itself,
    or into it when dest ends in / or there are several sources. `sources` holds, per source,
    its base directory, its (path, relative path) files and whether it is a directory."""
    into_dir = dest.endswith("/") or len(sources) > 1
    for base, files, is_dir in sources:
        for path, rel in files:
            if is_dir:
                target = resolve(str(PurePosixPath(dest) / rel))
                if owner is not None:
                    # Directories made on the way get the owner too, as with --chown.
                    parent = PurePosixPath(rel).parent
                    while str(parent) != ".":
                        d = resolve(str(PurePosixPath(dest) / parent))
                        d.mkdir(parents=True, exist_ok=True)
                        os.lchown(d, *owner)
                        parent = parent.parent
            elif into_dir or resolve(dest).is_dir():
                target = resolve(str(PurePosixPath(dest) / PurePosixPath(path).name))
            else:
                target = resolve(dest)
            copy_file(base / path, target, owner, mode)
        if is_dir:
            d = resolve(dest)
            d.mkdir(parents=True, exist_ok=True)
            if owner is not None:
                os.lchown(d, *owner)


def copy_args(ins: Instruction, env: dict[str, str]) -> tuple[list[str], str]:
    for flag in ins.flags:
        if flag not in ("from", "chown", "chmod", "link"):
            fail(f"{ins.show()}: --{flag} is not supported by this replay")
    words = json_form(ins.text)
    if words is None:
        words = ins.text.split()
    words = [substitute(w, env) for w in words]
    if len(words) < 2:
        fail(f"{ins.show()}: expected sources and a destination")
    return words[:-1], words[-1]


# --- The build stage -------------------------------------------------------------------------


CARGO_SHIM = """#!{python}
# Logs every cargo invocation of a replayed RUN line. In check mode `cargo build` becomes
# `cargo check` (without --release), so that manifest and missing-file errors show in
# seconds, and the invocation's artifact messages are kept (the last one's) for the replay to
# see what the final build compiled.
import json, os, subprocess, sys
args = sys.argv[1:]
log = os.environ["DOCKERFILE_REPLAY_CARGO_LOG"]
with open(log, "a") as f:
    f.write(json.dumps(args) + "\\n")
sub = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
if os.environ.get("DOCKERFILE_REPLAY_MODE") != "check" or sub is None or args[sub] not in ("build", "b"):
    os.execv({cargo!r}, [{cargo!r}] + args)
args[sub] = "check"
args.insert(sub + 1, "--message-format=json-render-diagnostics")
args = [a for a in args if a not in ("--release", "-r")]
done = subprocess.run([{cargo!r}] + args, stdout=subprocess.PIPE, text=True)
with open(log + ".messages", "w") as f:
    f.write(done.stdout)
sys.exit(done.returncode)
"""


def compiled_from_stub(out: Path, messages: str) -> str | None:
    """The crate root of a library in `out` that the final build took from an earlier RUN's
    stub: its dep-info lists nothing but the root file. A Docker build would ship that stub
    (COPY keeps modification times, so Cargo may find the stub's output up to date)."""
    for line in messages.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        target = msg.get("target", {})
        if msg.get("reason") != "compiler-artifact" or "lib" not in target.get("kind", []):
            continue
        root = Path(target.get("src_path", ""))
        if out not in root.parents:
            continue
        for rmeta in msg.get("filenames", []):
            name = Path(rmeta).name
            if name.startswith("lib") and name.endswith(".rmeta"):
                depinfo = Path(rmeta).with_name(name[3:-6] + ".d")
                if not depinfo.exists():
                    continue
                deps = set()
                for dep_line in depinfo.read_text().splitlines():
                    _, sep, files = dep_line.partition(": ")
                    deps.update(files.split() if sep else [])
                # Paths are relative to the package when it sits under the working directory.
                if {os.path.normpath(out / d) for d in deps} <= {str(root)}:
                    return str(root.relative_to(out))
    return None


ABSOLUTE = re.compile(r"(?:^|[\s;&|=<>'\"(`])/")


def build_stage(args: argparse.Namespace) -> None:
    global_args, stages = parse(args.dockerfile)
    if len(stages) < 2:
        fail("expected a build stage and a runtime stage")
    stage = build_stage_of(stages)
    context = Context(args.context)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cargo = shutil.which("cargo")
    if not cargo:
        fail("cargo not found")
    shim_dir = Path(tempfile.mkdtemp(prefix="dockerfile-replay-"))
    log = shim_dir / "cargo.log"
    log.touch()
    shim = shim_dir / "cargo"
    shim.write_text(CARGO_SHIM.format(python=sys.executable, cargo=cargo))
    shim.chmod(0o755)

    print(f"==> build stage `{stage.name}` ({stage.image}) replayed in {out}", file=sys.stderr)
    print(f"    context: {len(context.files)} files after .dockerignore", file=sys.stderr)
    m = re.match(r"(?:docker\.io/)?(?:library/)?rust:(\d+\.\d+(?:\.\d+)?)", stage.image)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout
    if m and not rustc.startswith(f"rustc {m.group(1)}"):
        print(f"    note: the image builds with Rust {m.group(1)}, this machine has {rustc.strip()}",
              file=sys.stderr)
    try:
        replay(args, stage, global_args, context, out, shim_dir, log)
    finally:
        shutil.rmtree(shim_dir)


def replay(args, stage, global_args, context, out, shim_dir, log) -> None:
    build_args = dict(a.split("=", 1) if "=" in a else (a, os.environ.get(a, "")) for a in args.build_arg)
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    env: dict[str, str] = {}
    workdir: str | None = None
    used_args: set[str] = set()

    def resolve(path: str) -> Path:
        if workdir is None:
            fail("the build stage needs a WORKDIR before COPY or RUN")
        p = PurePosixPath(path if path.startswith("/") else f"{workdir}/{path}")
        p = PurePosixPath(os.path.normpath(str(p)))
        try:
            rel = p.relative_to(workdir)
        except ValueError:
            fail(f"{path}: outside the build stage's WORKDIR {workdir}, which this replay maps")
        return out / rel

    for ins in stage.instructions:
        scope = {**global_args, **env}
        if ins.cmd == "ARG":
            k, v = parse_arg(ins.text)
            if k in build_args:
                v = build_args[k]
                used_args.add(k)
            elif v is None:
                v = global_args.get(k, "")
            env[k] = v
        elif ins.cmd == "ENV":
            env.update(parse_env(ins.text, scope))
        elif ins.cmd == "WORKDIR":
            wd = substitute(ins.text, scope)
            if workdir is None:
                if not wd.startswith("/"):
                    fail(f"{ins.show()}: the first WORKDIR must be absolute")
                workdir = os.path.normpath(wd)
                # The build stage's target/ is the shared CARGO_TARGET_DIR.
                if target_dir:
                    Path(target_dir).mkdir(parents=True, exist_ok=True)
                    (out / "target").symlink_to(target_dir)
            else:
                resolve(wd).mkdir(parents=True, exist_ok=True)
                workdir = str(PurePosixPath(workdir) / wd) if not wd.startswith("/") else wd
        elif ins.cmd == "COPY":
            if "from" in ins.flags:
                fail(f"{ins.show()}: COPY --from in the build stage is not supported")
            srcs, dest = copy_args(ins, scope)
            sources = []
            for spec in srcs:
                for src in context.sources(spec):
                    sources.append((context.root, context.files_under(src), src not in context.files))
            copy_into(sources, dest, resolve)
        elif ins.cmd == "RUN":
            if "mount" in ins.flags or "network" in ins.flags or "security" in ins.flags:
                fail(f"{ins.show()}: RUN --mount/--network/--security are not supported")
            if re.match(r"<<-?", ins.text.lstrip()):
                fail(f"{ins.show()}: heredocs are not supported")
            argv = json_form(ins.text)
            shown = ins.text if argv is None else " ".join(argv)
            if ABSOLUTE.search(shown):
                fail(
                    f"{ins.show()}: this replay runs build-stage RUN lines on the CI host, so "
                    "they may only use paths relative to WORKDIR"
                )
            cwd = resolve(".")
            run_env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
            run_env.update(env)
            run_env["PATH"] = f"{shim_dir}:{os.environ.get('PATH', DEFAULT_PATH)}"
            run_env["DOCKERFILE_REPLAY_CARGO_LOG"] = str(log)
            run_env["DOCKERFILE_REPLAY_MODE"] = "check" if args.check else "build"
            print(f"==> RUN {shown}", file=sys.stderr)
            cmd = argv if argv is not None else ["/bin/sh", "-c", ins.text]
            code = subprocess.run(cmd, cwd=cwd, env=run_env).returncode
            if code != 0:
                fail(f"{ins.show()}: exited with {code}")
        elif ins.cmd in ("LABEL", "USER", "EXPOSE", "STOPSIGNAL", "SHELL"):
            if ins.cmd == "SHELL":
                fail(f"{ins.show()}: SHELL is not supported")
        else:
            fail(f"{ins.show()}: {ins.cmd} is not supported in the build stage by this replay")
    unused = set(build_args) - used_args
    if unused:
        fail(f"build args {sorted(unused)} are not declared by an ARG in the build stage")
    ran = [shlex.join(json.loads(line)) for line in log.read_text().splitlines() if line.strip()]
    if not ran:
        fail("the build stage ran no cargo command")
    for line in ran:
        print(f"    cargo {line}", file=sys.stderr)
    messages = Path(f"{log}.messages")
    if args.check and messages.exists():
        stub = compiled_from_stub(out.resolve(), messages.read_text())
        if stub:
            fail(
                f"the last build compiled {stub} as an earlier RUN left it (a stub?), not as "
                "COPY brought it: touch the crate roots after copying the sources"
            )
    # The cargo commands as the Dockerfile wrote them (before any check-mode rewrite), one per
    # line, shell-quoted: check-container.sh builds the release binary with the last one.
    (out.parent / f"{out.name}.cargo").write_text("\n".join(ran) + "\n")
    # Where the runtime stage's COPY --from finds this stage's files.
    (out.parent / f"{out.name}.workdir").write_text(workdir or "/")


def build_stage_of(stages: list[Stage]) -> Stage:
    runtime = stages[-1]
    names = {
        ins.flags.get("from")
        for ins in runtime.instructions
        if ins.cmd == "COPY" and "from" in ins.flags
    }
    if len(names) != 1:
        fail("the runtime stage must COPY --from exactly one build stage")
    name = names.pop()
    for s in stages[:-1]:
        if s.name == name or str(s.index) == name:
            return s
    fail(f"COPY --from={name}: no such stage")
    raise AssertionError


# --- The runtime stage -----------------------------------------------------------------------


def runtime_parts(stages: list[Stage]) -> tuple[Stage, list[Instruction], list[Instruction]]:
    """The runtime stage, split into its cached base (before the first COPY) and the rest."""
    stage = stages[-1]
    first_copy = next(
        (n for n, ins in enumerate(stage.instructions) if ins.cmd in ("COPY", "ADD")),
        len(stage.instructions),
    )
    return stage, stage.instructions[:first_copy], stage.instructions[first_copy:]


def suite_of(image: str) -> str:
    m = re.fullmatch(r"(?:docker\.io/)?(?:library/)?debian:([a-z]+)(?:-slim)?(?:@\S+)?", image)
    if not m:
        fail(f"the runtime image {image} is not debian:<suite>[-slim]; only those are replayed")
    return m.group(1)


def key(args: argparse.Namespace) -> None:
    _, stages = parse(args.dockerfile)
    stage, base, _ = runtime_parts(stages)
    suite = suite_of(stage.image)
    digest = hashlib.sha256()
    digest.update(f"{BASE_FORMAT}\n{stage.image}\n".encode())
    for ins in base:
        digest.update(f"{ins.cmd} {json.dumps(ins.flags, sort_keys=True)} {ins.text}\n".encode())
    print(f"{suite} {digest.hexdigest()[:16]}")


@dataclass
class ImageState:
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    expose: list[str] = field(default_factory=list)
    healthcheck: list[str] | None = None
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def user_ids(root: Path, user: str) -> tuple[int, int, str]:
    name, _, group = user.partition(":")
    uid = gid = None
    home = "/"
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if len(f) >= 7 and (f[0] == name or f[2] == name):
            uid, gid, home = int(f[2]), int(f[3]), f[5]
            break
    if uid is None:
        if not name.isdigit():
            fail(f"USER {user}: no such user in the image's /etc/passwd")
        uid, gid = int(name), 0
    if group:
        gid = None
        for line in (root / "etc/group").read_text().splitlines():
            f = line.split(":")
            if len(f) >= 3 and (f[0] == group or f[2] == group):
                gid = int(f[2])
        if gid is None:
            if not group.isdigit():
                fail(f"USER {user}: no such group")
            gid = int(group)
    return uid, gid, home


def in_root(root: Path, path: str, workdir: str) -> Path:
    p = PurePosixPath(os.path.normpath(path if path.startswith("/") else f"{workdir}/{path}"))
    return root / str(p).lstrip("/")


def walk(
    instructions: list[Instruction],
    state: ImageState,
    root: Path | None,
    context: Context | None,
    build_out: Path | None,
) -> None:
    """Applies instructions to `state`, and to `root` when given (COPY, RUN, WORKDIR)."""
    for ins in instructions:
        scope = {**state.args, **state.env}
        if ins.cmd == "ARG":
            k, v = parse_arg(ins.text)
            state.args[k] = v or ""
        elif ins.cmd == "ENV":
            state.env.update(parse_env(ins.text, scope))
        elif ins.cmd == "WORKDIR":
            wd = substitute(ins.text, scope)
            state.workdir = os.path.normpath(wd if wd.startswith("/") else f"{state.workdir}/{wd}")
            if root is not None:
                in_root(root, state.workdir, "/").mkdir(parents=True, exist_ok=True)
        elif ins.cmd == "USER":
            state.user = substitute(ins.text, scope)
        elif ins.cmd == "EXPOSE":
            state.expose += substitute(ins.text, scope).split()
        elif ins.cmd == "HEALTHCHECK":
            words = ins.text
            opts = {}
            while words.startswith("--"):
                flag, _, words = words.partition(" ")
                k, _, v = flag[2:].partition("=")
                opts[k] = v
                words = words.strip()
            kind, _, rest = words.partition(" ")
            if kind.upper() == "NONE":
                state.healthcheck = None
            elif kind.upper() == "CMD":
                argv = json_form(rest.strip())
                state.healthcheck = argv if argv is not None else ["/bin/sh", "-c", rest.strip()]
                state.healthcheck_options = opts
            else:
                fail(f"{ins.show()}: expected HEALTHCHECK [options] CMD ...")
        elif ins.cmd in ("ENTRYPOINT", "CMD"):
            argv = json_form(ins.text)
            if argv is None:
                argv = ["/bin/sh", "-c", ins.text]
            if ins.cmd == "ENTRYPOINT":
                state.entrypoint = argv
                state.cmd = []
            else:
                state.cmd = argv
        elif ins.cmd in ("LABEL", "STOPSIGNAL", "VOLUME"):
            pass
        elif ins.cmd == "COPY":
            if root is None:
                continue
            srcs, dest = copy_args(ins, scope)
            owner = (0, 0)
            if ins.flags.get("chown"):
                uid, gid, _ = user_ids(root, substitute(ins.flags["chown"], scope))
                owner = (uid, gid)
            mode = int(ins.flags["chmod"], 8) if ins.flags.get("chmod") else None
            sources = []
            if "from" in ins.flags:
                assert build_out is not None
                stage_wd = (build_out.parent / f"{build_out.name}.workdir").read_text()
                for spec in srcs:
                    rel = os.path.relpath(os.path.normpath(spec), stage_wd)
                    if rel.startswith(".."):
                        fail(f"{ins.show()}: {spec} is outside the build stage's WORKDIR")
                    path = build_out / rel
                    if not path.exists():
                        fail(f"{ins.show()}: {spec} was not produced by the build stage")
                    if path.is_dir():
                        files = [
                            (str(p.relative_to(build_out)), str(p.relative_to(path)))
                            for p in sorted(path.rglob("*"))
                            if not p.is_dir()
                        ]
                        sources.append((build_out, files, True))
                    else:
                        # Through the target/ symlink: copy the file, not the link.
                        sources.append((build_out, [(rel, path.name)], False))
            else:
                assert context is not None
                for spec in srcs:
                    for src in context.sources(spec):
                        sources.append(
                            (context.root, context.files_under(src), src not in context.files)
                        )
            resolve = lambda p: in_root(root, p, state.workdir)  # noqa: E731
            copy_into_followed(sources, dest, resolve, owner, mode)
        elif ins.cmd == "RUN":
            if root is None:
                continue
            if ins.flags:
                fail(f"{ins.show()}: RUN flags are not supported")
            argv = json_form(ins.text) or ["/bin/sh", "-c", ins.text]
            uid, gid, home = user_ids(root, state.user)
            env = {"HOME": home if state.user != "root" else "/root", **state.args, **state.env}
            print(f"==> RUN (in {root}, as {state.user}) {ins.text}", file=sys.stderr)
            code = subprocess.run(
                ["chroot", f"--userspec={uid}:{gid}", "--groups=", str(root), "/bin/sh", "-c",
                 'cd "$0" && exec "$@"', state.workdir, *argv],
                env=env,
            ).returncode
            if code != 0:
                fail(f"{ins.show()}: exited with {code}")
        else:
            fail(f"{ins.show()}: {ins.cmd} is not supported in the runtime stage by this replay")


def copy_into_followed(sources, dest, resolve, owner, mode) -> None:
    # As COPY does: a source that is itself a symlink is followed, links inside a copied
    # directory are copied as links.
    followed = []
    for base, files, is_dir in sources:
        real = []
        for path, rel in files:
            src = Path(os.path.abspath(base / path))
            real.append((str(src.resolve() if not is_dir and src.is_symlink() else src), rel))
        followed.append((Path("/"), real, is_dir))
    copy_into(followed, dest, resolve, owner, mode)


def base(args: argparse.Namespace) -> None:
    _, stages = parse(args.dockerfile)
    _, base_part, _ = runtime_parts(stages)
    walk(base_part, ImageState(), args.root, None, None)


def apply(args: argparse.Namespace) -> None:
    _, stages = parse(args.dockerfile)
    _, base_part, rest = runtime_parts(stages)
    state = ImageState()
    walk(base_part, state, None, None, None)
    walk(rest, state, args.root, Context(args.context), args.build_out)


def seconds(duration: str) -> str:
    """A Dockerfile duration (Go's syntax: 1m30s, 500ms, 3s) in seconds, for timeout(1)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        fail(f"cannot read the duration {duration!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return f"{sum(float(n) * scale[u] for n, u in parts):g}"


def config(args: argparse.Namespace) -> None:
    _, stages = parse(args.dockerfile)
    state = ImageState()
    walk(stages[-1].instructions, state, None, None, None)
    uid, gid, home = user_ids(args.root, state.user)
    env = {"HOME": home, "HOSTNAME": "basalt-check", **state.env}
    if not state.healthcheck:
        fail("the runtime stage has no HEALTHCHECK")
    q = shlex.quote
    lines = [
        f"IMAGE_USER={q(state.user)}",
        f"IMAGE_USERSPEC={uid}:{gid}",
        f"IMAGE_WORKDIR={q(state.workdir)}",
        "IMAGE_ENV=(" + " ".join(q(f"{k}={v}") for k, v in env.items()) + ")",
        "IMAGE_COMMAND=(" + " ".join(q(a) for a in state.entrypoint + state.cmd) + ")",
        "IMAGE_HEALTHCHECK=(" + " ".join(q(a) for a in state.healthcheck) + ")",
        f"IMAGE_HEALTHCHECK_TIMEOUT={seconds(state.healthcheck_options.get('timeout', '30s'))}",
        "IMAGE_EXPOSE=(" + " ".join(q(p) for p in state.expose) + ")",
    ]
    print("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dockerfile", type=Path, default=Path("Dockerfile"))
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="replay the build stage in OUT")
    b.add_argument("--context", type=Path, default=Path("."))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--check", action="store_true", help="cargo check instead of cargo build")
    b.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    b.set_defaults(run=build_stage)
    k = sub.add_parser("key", help="print the runtime suite and the cache key of its base")
    k.set_defaults(run=key)
    s = sub.add_parser("base", help="run the runtime stage's base instructions in ROOT")
    s.add_argument("root", type=Path)
    s.set_defaults(run=base)
    a = sub.add_parser("apply", help="run the rest of the runtime stage in ROOT")
    a.add_argument("root", type=Path)
    a.add_argument("--context", type=Path, default=Path("."))
    a.add_argument("--build-out", type=Path, required=True)
    a.set_defaults(run=apply)
    c = sub.add_parser("config", help="print the image configuration for bash")
    c.add_argument("root", type=Path)
    c.set_defaults(run=config)
    args = p.parse_args()
    try:
        args.run(args)
    except Refused as e:
        print(f"dockerfile.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
