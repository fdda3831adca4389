"""Dependency versions from manifests and lockfiles, with the line each is declared on.

One module per ecosystem (`python`, `javascript`, `ruby`, `go`, `rust`), one reader per
file format, all returning `Dep`s in file order; `dispatch` picks the reader by file name.
Knows nothing of policy: `dependency-major-upgrade` decides what to report; this package
only says which package is at which version, and what "major" means for a version
(`Dep.major_key`).

Choices worth knowing:

* "The version" of a constraint is the lowest version it admits: `==4.2.7` is 4.2.7,
  `>=4.2,<5` and `~=4.2` are 4.2, npm `^1.2.3` is 1.2.3, `~1.2` and `1.x` are 1.2.0 and
  1.0.0, `>=2 <3` is 2.0.0, `^17 || ^18` is 17.0.0. Widening a range therefore never looks
  like an upgrade; raising its floor does. A constraint with no lower bound (`*`, `<3`,
  `latest`, a git URL, `file:`/`workspace:` references) has no version: the dependency is
  left out, as there is nothing to compare. Cargo.toml requirements read the same way: a
  bare `"1.2"` is Cargo's `^1.2`, so 1.2.0.
* Several entries may share one name (requirements with environment markers, `syn` 1.x and
  2.x side by side in Cargo.lock, nested `node_modules` in package-lock.json, several
  versions in yarn.lock and pnpm-lock.yaml, gem platform variants, Go `mod` and `mod/v2`);
  all are returned and the caller compares the highest.
* Local packages are skipped, their versions are the team's own: workspace members and
  path dependencies in uv.lock, poetry.lock, Cargo.lock (no `source`), Cargo.toml (`path`,
  even with a `version`), package-lock.json (`link`), yarn.lock (`workspace:`, `link:`,
  `portal:`, `file:`, `exec:`), pnpm-lock.yaml (`link:`, `file:`, directories),
  Pipfile.lock (`path`, `file`, `editable`) and Gemfile.lock (`PATH` sections). yarn
  berry's `patch:` entries are skipped too: the unpatched package has its own entry.
* Lockfile lines: the line that states the version (`version` in yarn.lock and
  Pipfile.lock; the key, which holds it, in pnpm-lock.yaml), except that `[[package]]`
  tables (poetry.lock, uv.lock, Cargo.lock) point at their `name`.
* Names are normalised per ecosystem: PEP 503 for Python; Go module paths lose their major
  suffix (`example.com/mod/v2` and `gopkg.in/yaml.v3` are `example.com/mod` and
  `gopkg.in/yaml`), so moving to the `/v2` path is an upgrade of the same module. npm, Ruby
  and Rust names are kept as written (those registries are case-sensitive). npm aliases
  (`old-react@npm:react@^16`) keep the alias, as package.json and node_modules do; Cargo
  renames (`package = "rustls"`) report the registry name.

Formats: requirements files, pyproject.toml (PEP 621, PEP 735, Poetry), poetry.lock,
uv.lock, Pipfile.lock, package.json, package-lock.json / npm-shrinkwrap.json, yarn.lock
(classic v1 and berry), pnpm-lock.yaml (lockfile 5.x, 6.x, 9.x), Gemfile.lock, go.mod,
Cargo.toml, Cargo.lock.
"""

from bot.formats.dependencies.dispatch import is_manifest, read_dependencies
from bot.formats.dependencies.model import Dep, DependencyFileError, Ecosystem
from bot.formats.dependencies.ranges import lowest_admitted

__all__ = [
    "Dep",
    "DependencyFileError",
    "Ecosystem",
    "is_manifest",
    "lowest_admitted",
    "read_dependencies",
]
