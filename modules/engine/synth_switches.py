"""Switches of production synth runs (`python main.py`) that the tests leave alone.

The generated jsii bindings check every argument's type at run time (typeguard), ~1.5 s of a
full synth. `skip_binding_type_checks()` turns those checks into no-ops in the calling
process; only the production synth calls it, so in the tests a wrong type still raises and
fails CI. The checks are never needed for correct output: the kernel validates what it
receives, and the synthesized JSON is identical with or without them (a test proves it).
"""

from __future__ import annotations

from typing import Any


def _unchecked(argname: str = "", value: object = None, expected_type: Any = None) -> None:
    return None


def skip_binding_type_checks() -> None:
    """No runtime type checks in the bindings of this process (idempotent)."""
    import jsii._type_checking as checking
    import cdktn

    # Generated modules import `check_type` by value, but it defers to this resolved function.
    checking._resolved_check = _unchecked
    # cdktn's own bindings carry an older copy of the check, looked up by global name on every
    # call in the module's namespace (hidden behind `publication`, so reached through a class).
    _cdktn_globals(cdktn)["check_type"] = _unchecked


def binding_type_checks_on() -> bool:
    """True if a wrong argument type still raises in this process's bindings."""
    import jsii._type_checking as checking
    import cdktn

    for check in (checking.check_type, _cdktn_globals(cdktn)["check_type"]):
        try:
            check(argname="probe", value=1, expected_type=str)
        except TypeError:
            continue
        return False
    return True


def _cdktn_globals(cdktn: Any) -> dict[str, Any]:
    return cdktn.App.__init__.__globals__
