"""Which tags name releases: version tags read the way PEP 440 and SemVer mean them.

A tag name is split into a prefix (``v``, ``release-``, ``flask-``, ``module/v``,
``@scope/pkg@``), a release number (``1.2.3``, ``2024.01``) and the rest, which decides
its kind:

``release``
    Nothing after the number, or only what marks a final release: build metadata
    (SemVer ``+build``), a post-release (PEP 440 ``.post1``), or Java's ``.Final``,
    ``.RELEASE``, ``-GA``.
``prerelease``
    PEP 440 pre-releases and development releases (``a1``, ``b2``, ``rc1``, ``.dev0``,
    ``alpha``, ``beta``, ``preview``), SemVer pre-releases (``1.2.3-anything``), Maven
    milestones and snapshots (``-M1``, ``-SNAPSHOT``, ``-CR1``).
``branch``
    Names of a line of releases rather than one: ``1.x``, ``8.0.x``, ``2.*``.
``major``
    A lone major number (``v4``, ``release-1``): often a moving tag (GitHub Actions'
    ``v4`` follows the newest ``4.y.z``), so not taken by default.
``other``
    Anything else (``release-2024-01``, ``latest``, ``REL_16_1``): not a version.

Sources: PEP 440 "Version specifiers" (pre-, post- and development releases, the
accepted spellings and separators); Semantic Versioning 2.0.0 §9–10 (a hyphen after
``MAJOR.MINOR.PATCH`` starts a pre-release, ``+`` build metadata).
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["TAG_KINDS", "TagKind", "classify_tag"]

TagKind = Literal["release", "prerelease", "branch", "major", "other"]
#: Every kind :func:`classify_tag` returns, with why a default tag selection skips it.
TAG_KINDS: dict[str, str] = {
    "release": "a final release",
    "prerelease": "a pre-release or development release",
    "branch": "names a line of releases (1.x, 8.0.x), not one release",
    "major": "a lone major number (v4), often a moving tag",
    "other": "not a version",
}

# prefix: nothing, or anything ending in a separator, then letters (v, go); non-greedy so
# that the first number after a separator is the release number
_VERSION = re.compile(r"^(?:.*?[-_/@])??[a-zA-Z]*(?P<number>\d+(?:\.\d+)*)(?P<rest>.*)$", re.DOTALL)
_FINAL = re.compile(r"^(?:[-_.]?(?:post|rev|r)[-_.]?\d*|[-_.](?:final|release|ga))?(?:\+[0-9a-z.+-]*)?$", re.I)
_PRE_WORDS = "a|b|c|rc|alpha|beta|pre|preview|dev|m|cr|snapshot|ea|nightly"
_PRE = re.compile(rf"^(?:[-_.]?post\d*)?[-_.]?(?:{_PRE_WORDS})[-_.]?\d*(?:[-_.+].*)?$", re.I)
_BRANCH = re.compile(r"^(?:\.[x*])+(?:[-_].*)?$", re.I)


def classify_tag(name: str) -> TagKind:
    """The kind of release a tag name denotes.

    Parameters
    ----------
    name : str
        A tag name as git lists it (``refs/tags/`` removed).

    Returns
    -------
    str
        ``release``, ``prerelease``, ``branch``, ``major`` or ``other`` (see the module docstring).
    """
    match = _VERSION.match(name.strip())
    if match is None:
        return "other"
    number, rest = match["number"], match["rest"]
    if _BRANCH.match(rest):
        return "branch"
    if _FINAL.match(rest):
        return "release" if "." in number else "major"
    if _PRE.match(rest):
        return "prerelease"
    if rest.startswith("-") and number.count(".") == 2:  # SemVer: any hyphenated suffix is a pre-release
        return "prerelease"
    return "other"
