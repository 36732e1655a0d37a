"""What kind of file a path is (tests, docs, CI, secrets, ...), by ordered, documented rules.

The first rule that matches wins, so a test of the login code is a test and `package-lock.json`
is a lockfile, not config. Kinds are judged from the path alone (plus whether git saw binary
content), never by extension alone where that would mislead: a YAML file is infrastructure only
inside an infrastructure folder or under an infrastructure name, CI only under a CI path, and
config otherwise. `docs/complexity-rubric.md` shows the same table; a test keeps them in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.schemas.triage import FileKind


@dataclass(frozen=True)
class PathRule:
    kind: FileKind
    description: str  # what the docs table says
    pattern: re.Pattern[str]  # matched against the whole lower-cased path


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_SEG = r"(?:^|/)"  # the start of a path segment
_CODE_EXT = (
    r"py|pyi|pyx|js|mjs|cjs|jsx|ts|tsx|mts|cts|go|rs|java|kt|kts|scala|c|h|cc|cpp|cxx|hpp|hh|cs|"
    r"rb|php|swift|m|mm|sh|bash|zsh|ps1|lua|pl|pm|r|jl|dart|ex|exs|erl|hrl|hs|clj|cljs|elm|"
    r"fs|fsx|vue|svelte|html|htm|css|scss|sass|less|sql|zig|nim|groovy|vb|asm|s|wasm"
)

PATH_RULES: tuple[PathRule, ...] = (
    PathRule(
        FileKind.SECRETS,
        "key and credential material: `.env` files (not `.env.example`/`.sample`/`.template`), "
        "`*.pem`, `*.key`, `*.p12`, `*.pfx`, `*.jks`, `*.keystore`, `id_rsa*`, `id_ed25519*`, "
        "`.netrc`, `.pypirc`, `.npmrc`, `credentials` and `credentials.*` data files (JSON, "
        "YAML, TOML, INI, XML, CSV, text; not code such as `credentials.py`), `secrets.*`, "
        "`*.htpasswd`",
        _rx(
            _SEG + r"(?:\.env(?:\.(?!example$|sample$|template$|dist$)[^/]+)?"
            r"|[^/]*\.(?:pem|key|p12|pfx|jks|keystore|htpasswd)"
            r"|id_(?:rsa|dsa|ecdsa|ed25519)[^/]*|\.netrc|\.pypirc|\.npmrc"
            r"|credentials(?:\.(?:json|ya?ml|toml|ini|cfg|conf|xml|csv|txt|env))?"
            r"|secrets?\.(?:ya?ml|json|toml|ini|txt|env))$"
        ),
    ),
    PathRule(
        FileKind.LOCKFILE,
        "dependency lockfiles: `package-lock.json`, `yarn.lock`, `pnpm-lock.yaml`, `poetry.lock`, "
        "`Pipfile.lock`, `uv.lock`, `pdm.lock`, `Cargo.lock`, `Gemfile.lock`, `composer.lock`, "
        "`go.sum`, `bun.lockb`, `npm-shrinkwrap.json`",
        _rx(
            _SEG + r"(?:package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml"
            r"|poetry\.lock|pipfile\.lock|uv\.lock|pdm\.lock|cargo\.lock|gemfile\.lock"
            r"|composer\.lock|go\.sum|bun\.lockb)$"
        ),
    ),
    PathRule(
        FileKind.BINARY,
        "files git reports as binary, and images, archives, fonts, media and compiled objects "
        "by extension",
        _rx(
            r"\.(?:png|jpe?g|gif|bmp|ico|webp|tiff?|psd|zip|gz|tgz|bz2|xz|7z|rar|tar|jar|war|whl|"
            r"egg|woff2?|ttf|otf|eot|mp3|mp4|wav|ogg|mov|avi|pdf|exe|dll|so|dylib|o|a|class|"
            r"pyc|pyo|bin|dat|sqlite3?|db)$"
        ),
    ),
    PathRule(
        FileKind.GENERATED,
        "generated or vendored files: `*.min.js`, `*.min.css`, `*.map`, `*_pb2.py`, `*.pb.go`, "
        "`*.generated.*`, and anything under `dist/`, `vendor/`, `node_modules/`, `third_party/`",
        _rx(
            r"(?:\.min\.(?:js|css)|\.map|_pb2(?:_grpc)?\.pyi?|\.pb\.go|\.generated\.[^/]+)$"
            r"|" + _SEG + r"(?:dist|vendor|node_modules|third_party)/"
        ),
    ),
    PathRule(
        FileKind.DEPENDENCY_MANIFEST,
        "dependency manifests: `package.json`, `requirements*.txt` (and `requirements/*.txt`), "
        "`constraints*.txt`, `pyproject.toml`, `setup.py`, `setup.cfg`, `Pipfile`, `Cargo.toml`, "
        "`go.mod`, `Gemfile`, `*.gemspec`, `composer.json`, `pom.xml`, `build.gradle(.kts)`, "
        "`environment.yml`",
        _rx(
            _SEG + r"(?:package\.json|requirements[^/]*\.txt|requirements/[^/]+\.txt"
            r"|constraints[^/]*\.txt|pyproject\.toml|setup\.py|setup\.cfg|pipfile|cargo\.toml"
            r"|go\.mod|gemfile|[^/]+\.gemspec|composer\.json|pom\.xml|build\.gradle(?:\.kts)?"
            r"|environment\.ya?ml)$"
        ),
    ),
    PathRule(
        FileKind.CI,
        "CI configuration: `.github/workflows/`, `.github/actions/`, `.gitlab-ci.yml`, "
        "`.circleci/`, `.travis.yml`, `azure-pipelines.yml`, `Jenkinsfile`, `.buildkite/`, "
        "`appveyor.yml`, `.drone.yml`",
        _rx(
            r"^(?:\.github/(?:workflows|actions)/|\.circleci/|\.buildkite/)"
            r"|" + _SEG + r"(?:\.gitlab-ci\.ya?ml|\.travis\.ya?ml|azure-pipelines\.ya?ml"
            r"|jenkinsfile|appveyor\.ya?ml|\.drone\.ya?ml)$"
        ),
    ),
    PathRule(
        FileKind.INFRASTRUCTURE,
        "deployment and infrastructure: `Dockerfile*`, `docker-compose*`/`compose*.yml`, "
        "`.dockerignore`, `*.tf`, `*.tfvars`, `*.hcl`, `Procfile`, `Chart.yaml`, and files under "
        "`terraform/`, `k8s/`, `kubernetes/`, `helm/`, `charts/`, `ansible/`, `deploy/`, "
        "`infra/` (a YAML file elsewhere is config, not infrastructure)",
        _rx(
            _SEG + r"(?:dockerfile[^/]*|[^/]*\.dockerfile|docker-compose[^/]*|compose\.ya?ml"
            r"|\.dockerignore|procfile|chart\.ya?ml|[^/]+\.(?:tf|tfvars|hcl))$"
            r"|" + _SEG + r"(?:terraform|k8s|kubernetes|helm|charts|ansible|deploy|infra)/"
        ),
    ),
    PathRule(
        FileKind.MIGRATION,
        "database migrations: files under a `migrations/`, `migrate/` or `alembic/versions/` "
        "folder",
        _rx(_SEG + r"(?:migrations|migrate|alembic/versions)/[^/]+$"),
    ),
    PathRule(
        FileKind.TEST,
        "tests: under `test/`, `tests/`, `testing/`, `__tests__/`, `spec/`; or named `test_*`, "
        "`*_test.*`, `*.test.*`, `*.spec.*`, `conftest.py`",
        _rx(
            _SEG + r"(?:tests?|testing|__tests__|specs?)/"
            r"|" + _SEG + r"(?:test_[^/]+|[^/]+_test\.[^/.]+|[^/]+\.(?:test|spec)\.[^/]+"
            r"|conftest\.py)$"
        ),
    ),
    PathRule(
        FileKind.DOCS,
        "documentation: under `docs/` or `doc/`; `*.md`, `*.rst`, `*.adoc`, `*.txt`; `README*`, "
        "`CHANGELOG*`, `CHANGES*`, `HISTORY*`, `LICENSE*`, `AUTHORS*`, `CONTRIBUTING*`",
        _rx(
            _SEG + r"docs?/"
            r"|\.(?:md|markdown|rst|adoc|txt)$"
            r"|" + _SEG + r"(?:readme|changelog|changes|history|license|licence|authors"
            r"|contributing|notice)(?:\.[^/]*)?$"
        ),
    ),
    PathRule(
        FileKind.SECURITY,
        "authentication and security code: source whose path names auth, login, password, "
        "oauth, jwt, token, session, csrf, crypto, permission, acl, sanitize or security",
        _rx(
            r"(?:^|[/_.-])(?:auth(?:n|z|entication|entication|ori[sz]ation|ori[sz]e)?|login|logout"
            r"|passw(?:or)?ds?|oauth2?|jwt|tokens?|sessions?|csrf|xsrf|crypto|cryptography"
            r"|permissions?|acl|saniti[sz]e|saniti[sz]ers?|security|secrets?)(?=[/_.-])"
            r"(?:.*/)?[^/]*\.(?:" + _CODE_EXT + r")$"
        ),
    ),
    PathRule(
        FileKind.CONFIG,
        "configuration: `*.yml`, `*.yaml`, `*.toml`, `*.ini`, `*.cfg`, `*.conf`, `*.json`, "
        "`*.properties`, `*.xml`, dotfiles such as `.gitignore` or `.editorconfig`, `Makefile`",
        _rx(
            r"\.(?:ya?ml|toml|ini|cfg|conf|json|jsonc|json5|properties|xml|plist|env\.example)$"
            r"|" + _SEG + r"(?:\.[^/]+|makefile|gnumakefile|cmakelists\.txt)$"
        ),
    ),
    PathRule(
        FileKind.SOURCE,
        "source code, by extension (Python, JS/TS, Go, Rust, Java, C/C++, Ruby, shell, HTML, "
        "CSS, SQL and other programming languages)",
        _rx(r"\.(?:" + _CODE_EXT + r")$"),
    ),
)


def classify(path: str, *, binary: bool = False) -> FileKind:
    """The kind of ``path``: the first matching rule of `PATH_RULES`, else ``other``."""
    normal = str(PurePosixPath(path.replace("\\", "/")))
    for rule in PATH_RULES:
        if rule.kind is FileKind.BINARY and binary:
            return FileKind.BINARY
        if rule.pattern.search(normal):
            return rule.kind
    return FileKind.OTHER
