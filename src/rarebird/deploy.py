"""What a host needs to run rarebird continuously: the audit rules that make the kernel record
the process starts the datafeed reads, and a hardened systemd unit for ``rarebird serve``.

Pure text: ``rarebird setup auditd|systemd`` (:mod:`rarebird.cli.setup`) writes it and, with the
administrator's consent, loads it.

**The audit rules.** The job's datafeed asks for process starts (``event.type: start``) of
``netstat``, ``ss``, ``route`` and ``showmount`` by *any* user: the anomaly it looks for is a user
who does not usually run them -- very often a service account such as ``www-data`` running a web
shell's commands. So the rules record ``execve`` and ``execveat`` for every user, on both ABIs
(``b64``, and ``b32`` for 32-bit programs on a 64-bit kernel, which would otherwise go unseen),
the same rule Elastic documents for Auditbeat and Auditd Manager (``-a always,exit -F arch=b64
-S execve,execveat -k exec``). No ``auid`` filter: a daemon's processes have no login uid
(``auid=unset``), and filtering them out would hide exactly the accounts the job watches. The
raw auditd source reads the SYSCALL, EXECVE, CWD and PROCTITLE records these rules produce.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: the key (``-k``) the rules carry, so ``ausearch -k rarebird_exec`` finds their events
AUDIT_KEY = "rarebird_exec"
#: where ``augenrules`` reads rules from (``/etc/audit/rules.d/*.rules``)
DEFAULT_RULES_FILE = "/etc/audit/rules.d/rarebird.rules"
DEFAULT_UNIT_FILE = "/etc/systemd/system/rarebird.service"
#: folders ``ProtectHome=yes`` hides from the service
HOME_DIRS = ("/home/", "/root/", "/run/user/")


def audit_rules(key: str = AUDIT_KEY) -> str:
    """The ``rules.d`` file: process starts by every user, on both ABIs.

    >>> print(audit_rules().splitlines()[-1])
    -a always,exit -F arch=b32 -S execve,execveat -k rarebird_exec
    """
    return (
        "## rarebird: process starts for the 'Unusual Linux Network Connection Discovery' job\n"
        "## (written by 'rarebird setup auditd'). Every user, both ABIs, no auid filter: the\n"
        "## job looks for accounts that do not usually run discovery commands, daemons included.\n"
        f"-a always,exit -F arch=b64 -S execve,execveat -k {key}\n"
        f"-a always,exit -F arch=b32 -S execve,execveat -k {key}\n"
    )


@dataclass(frozen=True)
class UnitOptions:
    """What the unit runs and where it may write."""

    #: the command that starts rarebird (``/usr/bin/python3 -m rarebird`` or a script)
    command: str
    #: the serve configuration (TOML)
    config: str
    #: the store: its folder is the only place the service may write
    store: str
    user: str = "rarebird"
    group: str = "rarebird"


def systemd_unit(opts: UnitOptions) -> str:
    """A ``rarebird.service`` for ``rarebird serve`` with systemd's sandboxing: a read-only
    system, no new privileges, no capabilities, the store's folder the only writable path.

    >>> unit = systemd_unit(UnitOptions("/usr/bin/rarebird", "/etc/rarebird/rarebird.toml",
    ...                                 "/var/lib/rarebird/rarebird.db"))
    >>> [line for line in unit.splitlines() if line.startswith(("ExecStart", "ReadWrite"))]
    ['ExecStart=/usr/bin/rarebird serve --config /etc/rarebird/rarebird.toml', 'ReadWritePaths=/var/lib/rarebird']
    """
    store_dir = os.path.dirname(os.path.abspath(opts.store)) or "/"
    paths = (opts.command.split()[0], opts.config, opts.store)
    # a virtual environment or a store under a home folder stays readable (not hidden)
    protect_home = "read-only" if any(p.startswith(HOME_DIRS) for p in paths) else "yes"
    return f"""\
# rarebird serve, written by 'rarebird setup systemd'.
# The service reads the audit log: give its group read access (auditd.conf: log_group = {opts.group})
# or run it as root (User=root); the sandbox below stays either way.
[Unit]
Description=rarebird: Elastic's Unusual Linux Network Connection Discovery detection
After=network-online.target auditd.service
Wants=network-online.target

[Service]
Type=simple
User={opts.user}
Group={opts.group}
Environment=RAREBIRD_STORE={opts.store}
ExecStart={opts.command} serve --config {opts.config}
# SIGTERM finishes the turn, commits, snapshots and exits 0
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
RestartSec=5s

# sandbox
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={store_dir}
ProtectHome={protect_home}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
UMask=0027

[Install]
WantedBy=multi-user.target
"""
