"""Definitions shared by every analysis, each written once as an SQL fragment.

* :func:`production_deployment` — what a *production deployment* is (DESIGN.md §6): a
  deployment with status ``success`` to an environment listed in
  ``Settings.production_environments`` (names compared in lower case).
* :func:`pre_production_stages` — the *pre-production stages*: the environments of
  ``Settings.environment_order`` that are not production, in pipeline order;
  :func:`last_pre_production_stage` is the one right before production (the stage a
  deployment "skips" when its sha reaches production without passing it).
* :func:`span_hours` / :func:`span_minutes` — a duration between two recorded times,
  exact to the microsecond.
* :func:`is_clock_skew` / :func:`guarded` — the one guard for *impossible spans*: a
  duration between two independently recorded timestamps that ends before it starts
  (a commit authored on a clock running fast, an incident resolved before the
  deployment that restored it) is clock skew. It is left out of every aggregate, kept
  in drill-downs with a ``clock_skew`` flag, and counted in a note.

Fragments are text to paste into a query; their inputs are column expressions written
by this package, never user input (values travel as query parameters).
"""

from __future__ import annotations

from releaserisk.config import Settings

__all__ = [
    "GUARDS",
    "guarded",
    "in_production_environment",
    "is_clock_skew",
    "last_pre_production_stage",
    "pre_production_stages",
    "production_deployment",
    "production_environments",
    "span_hours",
    "span_minutes",
]

#: How a profile treats an impossible (negative) span, see :func:`guarded`.
#: ``exclude``: out of aggregates, kept with ``clock_skew`` in drill-downs (the default);
#: ``drop``: no value at all, as DevLake's ``computeTimeSpan`` returns nil;
#: ``keep``: counted as it is, as Four Keys' queries do (still flagged).
GUARDS = ("exclude", "drop", "keep")


def production_deployment(alias: str = "", environments: str = "$prod") -> str:
    """SQL predicate: the deployment row ``alias`` is a production deployment.

    Parameters
    ----------
    alias : str
        Table alias of a ``deployments`` row (empty: unqualified columns).
    environments : str
        The query parameter holding :func:`production_environments` (``$prod`` or ``?``).

    Returns
    -------
    str
        ``status = 'success' AND list_contains(<environments>, lower(environment))``.
    """
    p = f"{alias}." if alias else ""
    return f"({p}status = 'success' AND {in_production_environment(alias, environments)})"


def in_production_environment(alias: str = "", environments: str = "$prod") -> str:
    """SQL predicate: the deployment row ``alias`` went to a production environment, whatever its status.

    Parameters
    ----------
    alias : str
        Table alias of a ``deployments`` row (empty: unqualified columns).
    environments : str
        The query parameter holding :func:`production_environments`.

    Returns
    -------
    str
    """
    p = f"{alias}." if alias else ""
    return f"list_contains({environments}, lower({p}environment))"


def production_environments(settings: Settings) -> list[str]:
    """The production environment names, lower case, as the parameter of :func:`production_deployment`.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    list of str
    """
    return [name.lower() for name in settings.production_environments]


def pre_production_stages(settings: Settings) -> list[str]:
    """The pre-production stages: ``environment_order`` without the production environments, in order.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    list of str
        Lower-case names, first stage first (``["dev", "staging"]`` by default).
    """
    production = set(production_environments(settings))
    return [env for env in settings.environment_order if env not in production]


def last_pre_production_stage(settings: Settings) -> str | None:
    """The stage right before production (the last of :func:`pre_production_stages`), or None.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    str or None
    """
    stages = pre_production_stages(settings)
    return stages[-1] if stages else None


def span_hours(start: str, end: str) -> str:
    """SQL for ``end - start`` in hours, exact to the microsecond.

    Epoch arithmetic, not ``date_diff``: on TIMESTAMPTZ, ``date_diff`` goes through ICU
    calendars and cost 2.7 s per 10M rows on benchmarks/dora.py.

    Parameters
    ----------
    start, end : str
        TIMESTAMPTZ column expressions.

    Returns
    -------
    str
    """
    return f"((epoch_us({end}) - epoch_us({start})) / 3600e6)"


def span_minutes(start: str, end: str) -> str:
    """SQL for ``end - start`` in minutes, exact for whole minutes.

    Peer profiles round to whole minutes; ``hours * 60`` is not exact in binary floating
    point (31 minutes became 31.000000000000004, which rounds up to 32); a quotient of
    microseconds by 60e6 is, whenever the span is a whole number of minutes.

    Parameters
    ----------
    start, end : str
        TIMESTAMPTZ column expressions.

    Returns
    -------
    str
    """
    return f"((epoch_us({end}) - epoch_us({start})) / 60e6)"


def is_clock_skew(value: str) -> str:
    """SQL: the span ``value`` is impossible (it ends before it starts).

    Parameters
    ----------
    value : str
        A duration expression (hours or minutes; the sign is what matters).

    Returns
    -------
    str
        A BOOLEAN expression, NULL when the span is.
    """
    return f"({value} < 0)"


def guarded(value: str, guard: str = "exclude") -> str:
    """SQL: the span ``value`` as an aggregate may use it, under the profile's ``guard``.

    Parameters
    ----------
    value : str
        A duration expression.
    guard : {"exclude", "drop", "keep"}
        ``exclude`` and ``drop`` give NULL for a negative span (so medians, p90 and counts
        of values leave it out); ``keep`` gives it unchanged (a peer that counts it).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        An unknown guard (a programming error, not user input).
    """
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {GUARDS}")
    if guard == "keep":
        return value
    return f"(CASE WHEN {value} >= 0 THEN {value} END)"
