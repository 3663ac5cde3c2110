"""The operating system's refusals ("[Errno 111] Connection refused") as what to do, in words."""

from __future__ import annotations

import errno
import socket

from .i18n import _

__all__ = ["explain"]

# device directories and the group that opens them (systemd/99-pesee.rules gives them out)
_DEVICE_GROUPS = (
    ("/dev/gpiochip", "gpio"),
    ("/dev/input/", "input"),
    ("/dev/tty", "dialout"),
    ("/dev/serial/", "dialout"),
    ("/dev/pesee-scanner", "dialout"),
    ("/dev/pesee-scale", "dialout"),
)


def _target(exc: OSError, what: str | None) -> str:
    if what:
        return what
    if exc.filename is not None:
        return str(exc.filename)
    return ""


def _permission(target: str) -> str:
    for prefix, group in _DEVICE_GROUPS:
        if target.startswith(prefix):
            return _(
                "{target}: permission refused: the device belongs to the {group} group; add "
                "yourself to it (sudo usermod -aG {group} $USER, then log in again) or run the "
                "command as the station's user: sudo -u pesee station …"
            ).format(target=target, group=group)
    if target:
        return _(
            "{target}: permission refused: it belongs to the station's user; add yourself to "
            "its group (sudo usermod -aG pesee $USER, then log in again) or run the command as "
            "that user: sudo -u pesee station …"
        ).format(target=target)
    return _(
        "permission refused by the system: a port below 1024 needs root (choose 1024 or above), "
        "and the station's files need its group (sudo usermod -aG pesee $USER, then log in again)"
    )


def explain(exc: BaseException, what: str | None = None) -> str:
    """One line for a person: what the system refused and what to do about it.

    ``what`` names the thing that was tried ("the broker 10.0.0.2:1883", "/dev/pesee-scale") when
    the exception does not (a socket's errors carry no address)."""
    if isinstance(exc, socket.gaierror):
        return _(
            "{target}: unknown host name: check its spelling in the config, and the network (DNS)"
        ).format(target=what or _("the host"))
    if isinstance(exc, TimeoutError) and not getattr(exc, "errno", None):
        return _(
            "{target}: no answer in time: the network, the machine or the service is down or "
            "too slow; try again, then check them"
        ).format(target=what or _("the other end"))
    if not isinstance(exc, OSError):
        return str(exc)
    target = _target(exc, what)
    subject = target or _("the system")
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return _(
            "{target}: connection refused: nothing listens there (service stopped, or a wrong "
            "host or port in the config); start the service or fix the address"
        ).format(target=what or _("the server"))
    if code in (errno.EACCES, errno.EPERM):
        return _permission(target)
    if code == errno.ENOENT:
        if target.startswith("/dev/"):
            return _(
                "{target} does not exist: the device is unplugged or off, or its name is not "
                "set (/etc/udev/rules.d/98-pesee-local.rules); plug it in or fix the path in "
                "the config"
            ).format(target=target)
        return _("{target} does not exist: check the path, or create it first").format(
            target=subject
        )
    if code == errno.EADDRINUSE:
        return _(
            "{target}: the address is already in use by another program: stop it, or choose "
            "another port in the config"
        ).format(target=what or _("the port"))
    if code == errno.EBUSY:
        return _(
            "{target} is busy: another program holds it (the station's daemon? sudo systemctl "
            "stop pesee-station, then try again)"
        ).format(target=subject)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN):
        return _(
            "{target}: no route to it: the network is down or the address is wrong; check the "
            "cable or Wi-Fi, then the address in the config"
        ).format(target=what or _("the host"))
    if code == errno.ETIMEDOUT:
        return _(
            "{target}: no answer in time: the network, the machine or the service is down or "
            "too slow; try again, then check them"
        ).format(target=what or _("the other end"))
    if code in (errno.ENODEV, errno.ENXIO):
        return _(
            "{target}: the device went away (unplugged, or its adapter failed): plug it back in"
        ).format(target=subject)
    if code == errno.ENOSPC:
        return _(
            "{target}: the disk is full: free some space (df -h shows it), nothing more can be "
            "written until then"
        ).format(target=subject)
    if code == errno.EROFS:
        return _(
            "{target}: the file system is read-only (a failing card is often put read-only by "
            "the system): call the technician"
        ).format(target=subject)
    if code == errno.EIO:
        return _(
            "{target}: input/output error: the card or the device is failing; call the technician"
        ).format(target=subject)
    # anything else: the system's own words, without the "[Errno N]" noise
    reason = exc.strerror or str(exc)
    return _("{key}: {problem}").format(key=subject, problem=reason) if subject else reason
