"""LPRng 3.8.B's printcap key table (``src/vars.c``, ``Pc_var_list``) with the Debian defaults.

The type decides how a value is read (see ``datatypes``); a key missing here is kept
verbatim and typed as written. ``BSD_ONLY`` keys mean something to BSD lpd but nothing to
LPRng; checkpc says so instead of calling them typos.
"""
from __future__ import annotations

from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    KeyType = Literal["S", "N", "F"]


class Key(FrozenStruct):
    """One known printcap key."""

    __slots__ = _fields = ("name", "type", "default", "meaning")
    name: str
    type: KeyType
    default: str | int | bool | None
    meaning: str

    def __init__(self, name: str, type: KeyType,  # noqa: A002 - the field's name
                 default: str | int | bool | None, meaning: str) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "name", name)
        setattr_(self, "type", type)
        setattr_(self, "default", default)
        setattr_(self, "meaning", meaning)


def _k(name: str, type_: KeyType, default: str | int | bool | None, meaning: str) -> Key:
    return Key(name, type_, default, meaning)


_TABLE = (
    _k("ab", "F", False, "always print a banner"),
    _k("achk", "F", False, "read a reply from the accounting target"),
    _k("ae", "S", "jobend $H $n $P $k $b $t $'C $'J $'M", "accounting line at job end"),
    _k("af", "S", "acct", "accounting file (appended to only if it exists)"),
    _k("ah", "F", False, "hold every new job"),
    _k("all", "S", None, "in the entry named all: the printer list"),
    _k("ar", "F", True, "remote-transfer accounting"),
    _k("as", "S", "jobstart $H $n $P $k $b $t $'C $'J $'M", "accounting line at job start"),
    _k("be", "S", None, "end banner program"),
    _k("bk", "F", False, "strict RFC 1179 control files when forwarding"),
    _k("bk_filter_options", "S", "$P $w $l $x $y $F $c $L $i $J $C $0n $0h $-a",
       "filter options when bkf is set"),
    _k("bk_of_filter_options", "S", "$w $l $x $y", "OF filter options when bkf is set"),
    _k("bkf", "F", False, "BSD-style filter options"),
    _k("bl", "S", "$-C:$-n Job: $-J Date: $-t", "short banner line"),
    _k("bp", "S", None, "banner program"),
    _k("bq_format", "S", "f", "format of a bounced job"),
    _k("br", "N", 0, "serial speed"),
    _k("bs", "S", None, "start banner program"),
    _k("check_for_nonprintable", "F", True, "lpr checks f-format files for binary data"),
    _k("cm", "S", None, "comment shown by lpq and lpstat -l"),
    _k("connect_grace", "N", 0, "pause before each connection, seconds"),
    _k("connect_interval", "N", 10, "base pause between connection tries, seconds"),
    _k("connect_timeout", "N", 10, "time allowed for one connection try, seconds"),
    _k("control_filter", "S", None, "filter for control files"),
    _k("create_files", "F", False, "create log and accounting files when missing"),
    _k("db", "S", None, "debug options"),
    _k("default_remote_host", "S", "localhost", "rm when neither lp nor rm is set"),
    _k("direct", "F", False, "the client writes straight to lp"),
    _k("done_jobs", "N", 1, "finished jobs kept for status"),
    _k("done_jobs_max_age", "N", 0, "age limit of kept finished jobs, seconds"),
    _k("ff", "S", "\\f", "form-feed string"),
    _k("ff_separator", "F", False, "form feed between files of a job"),
    _k("fifo", "F", True, "print strictly in arrival order"),
    _k("filter", "S", None, "fallback filter for every format"),
    _k("filter_options", "S", "$A $B $C $D $E $F $G $H $I $J $K $L $M $N $O $P $Q $R $S $T "
       "$U $V $W $X $Y $Z $a $b $c $d $e $f $g $h $i $j $k $l $m $n $o $p $q $r $s $t $u $v "
       "$w $x $y $z $-a", "options appended to every filter"),
    _k("filter_ld_path", "S", None, "LD_LIBRARY_PATH of filters (unset when empty)"),
    _k("filter_path", "S", "/bin:/usr/bin:/usr/local/bin", "PATH of filters"),
    _k("filter_stderr_to_status_file", "F", False, "filter stderr goes to the ps file"),
    _k("fo", "F", False, "form feed when the device is opened"),
    _k("force_localhost", "F", True, "clients always talk to the local server"),
    _k("fq", "F", False, "form feed when the device is closed"),
    _k("fx", "S", None, "formats that may be submitted"),
    _k("half_close", "F", True, "shut down the write side of a socket at the end of a job"),
    _k("hl", "F", False, "banner at the end of the job"),
    _k("if", "S", None, "filter for formats f, l and p"),
    _k("keepalive", "F", True, "SO_KEEPALIVE on outgoing connections"),
    _k("la", "F", True, "local accounting"),
    _k("ld", "S", None, "leader sent at the start of a job (C escapes)"),
    _k("lf", "S", "log", "log file, relative to sd"),
    _k("lk", "F", False, "lock the device"),
    _k("longnumber", "F", False, "six-digit job numbers"),
    _k("lp", "S", None, "output: device, |pipe, host%port, queue@host, ftp://"),
    _k("lpd_bounce", "F", False, "filter, then forward as one file"),
    _k("lpd_listen_port", "S", "off", "port lpd listens on (Debian: off)"),
    _k("lpd_port", "S", "515", "port for LPD forwarding"),
    _k("max_connect_interval", "N", 60, "cap on the pause between tries, seconds"),
    _k("mc", "N", 1, "maximum copies"),
    _k("minfree", "N", 0, "KiB to keep free in the spool"),
    _k("ml", "N", 0, "minimum printable characters in a text job"),
    _k("mx", "N", 0, "maximum job size in KiB (0: no limit)"),
    _k("nb", "F", False, "open the device non-blocking"),
    _k("of", "S", None, "output filter for banners and separators"),
    _k("of_filter_options", "S", None, "options for the OF filter"),
    _k("originate_port", "S", "512 1023", "source ports for outgoing TCP when root"),
    _k("pass_env", "S", "LANG,LC_*", "environment variables filters get from the daemon"),
    _k("pl", "N", 66, "page length, lines"),
    _k("ppd", "S", None, "PPD file"),
    _k("pr", "S", "/usr/bin/pr", "program for format p"),
    _k("ps", "S", "status", "status file, relative to sd"),
    _k("pw", "N", 80, "page width, characters"),
    _k("px", "N", 0, "page width, pixels"),
    _k("py", "N", 0, "page length, pixels"),
    _k("qq", "F", True, "record the queue name in jobs"),
    _k("retry_econnrefused", "F", True, "retry refused connections"),
    _k("retry_nolink", "F", True, "no effect in LPRng 3.8.B"),
    _k("rg", "S", None, "only members of these groups may print"),
    _k("rm", "S", None, "remote host for LPD forwarding"),
    _k("router", "S", None, "routing filter"),
    _k("rp", "S", None, "remote queue name (default: the queue's name)"),
    _k("rw", "F", False, "open the device read/write"),
    _k("save_on_error", "F", False, "keep failed jobs"),
    _k("save_when_done", "F", False, "keep finished jobs"),
    _k("sb", "F", False, "short banner"),
    _k("sd", "S", "/var/spool/lpd/%P", "spool directory"),
    _k("send_failure_action", "S", "remove", "what to do after send_try failed attempts"),
    _k("send_job_rw_timeout", "N", 0, "read/write timeout while printing, seconds (0: none)"),
    _k("send_query_rw_timeout", "N", 30, "timeout for status queries, seconds"),
    _k("send_try", "N", 3, "attempts per job (0: no limit)"),
    _k("sf", "F", True, "no form feed between the files of a job"),
    _k("send_data_first", "F", False, "LPD forwarding: the data file before the control file"),
    _k("sh", "F", False, "suppress banners"),
    _k("shell", "S", "/bin/sh", "shell for filter and pipe commands with < > | ;"),
    _k("socket_linger", "N", 10, "SO_LINGER on outgoing connections, seconds"),
    _k("spool_dir_perms", "N", 0o700, "mode of spool directories"),
    _k("spool_file_perms", "N", 0o600, "mode of spooled files"),
    _k("ss", "S", None, "the server queue of a subserver"),
    _k("stop_on_abort", "F", False, "stop the queue when a job aborts"),
    _k("stty", "S", None, "stty settings of a tty device"),
    _k("suspend_of_filter", "F", True, "suspend the OF filter instead of restarting it"),
    _k("sv", "S", None, "subserver queues of a server queue"),
    _k("tr", "S", None, "trailer sent at the end of a job (C escapes)"),
    _k("translate_format", "S", None, "rename formats of outgoing jobs"),
    # lpfilter's own keys (LPRng ignores keys it does not know, so one printcap serves both)
    _k("accounting_format", "S", "lprng", "lpfilter: accounting lines as LPRng writes them"
       " (lprng) or lpfilter's own key=value line (keyvalue)"),
    _k("ftp_active", "F", False, "lpfilter: FTP active mode (PORT) instead of passive"),
    _k("ftp_idle", "N", 240, "lpfilter: reuse an FTP session idle less than this, seconds"),
    _k("ftp_password_file", "S", None, "lpfilter: file whose first line is the FTP password"),
    _k("ftp_sessions", "N", 3, "lpfilter: most FTP sessions to one print server at once"),
    _k("ftp_user", "S", None, "lpfilter: FTP user name (default: netrc, else anonymous)"),
    _k("init", "S", None, "lpfilter: bytes sent after the PJL prologue (C escapes)"),
    _k("lpd_batch", "F", False, "lpfilter: LPD forwarding sends a batch's jobs on one"
       " connection, data file first"),
    _k("lpd_reserved_port", "F", False, "lpfilter: LPD forwarding as root connects from a"
       " port in originate_port"),
    _k("pagecount", "F", False, "lpfilter: PJL INFO PAGECOUNT before and after the job"),
    _k("pjl", "F", False, "lpfilter: wrap jobs in PJL JOB/EOJ (socket printers)"),
    _k("pjl_enter", "S", None, "lpfilter: PJL ENTER LANGUAGE (PCL, POSTSCRIPT...)"),
    _k("ps_eoj", "F", False, "lpfilter: PostScript ^D before and after the job"),
    _k("stall_timeout", "N", 300, "lpfilter: a printer or program taking no data this long"
       " fails the try"),
    _k("sync", "F", False, "lpfilter: PJL ECHO sync before the job"),
    _k("waitend", "S", None, "lpfilter: wait for completion: pjl, echo, eof, delay or none"),
    _k("waitend_delay", "N", 5, "lpfilter: seconds to wait with waitend=delay"),
    _k("waitend_timeout", "N", 90, "lpfilter: silence that ends a completion wait, seconds"),
)

KEYS: dict[str, Key] = {key.name: key for key in _TABLE}

#: Keys LPRng itself acts on while parsing; they are not variables.
PARSER_KEYS = frozenset({"tc", "oh", "server", "client"})

#: BSD lpd keys with no meaning in LPRng 3.8.B (``rt`` is *not* send_try there).
BSD_ONLY = {
    "rt": "BSD's retry count; use send_try",
    "ms": "BSD's stty mode string; LPRng uses stty",
    "sy": "BSD's stty settings; LPRng uses stty",
    "fc": "old BSD tty flag clear bits; LPRng uses stty",
    "fs": "old BSD tty flag set bits; LPRng uses stty",
    "xc": "old BSD local-mode clear bits; LPRng uses stty",
    "xs": "old BSD local-mode set bits; LPRng uses stty",
    "hw": "BSD/OS hard-wired flag",
    "ty": "old BSD tty settings; LPRng uses stty",
    "co": "BSD's copy count limit; LPRng uses mc",
}

#: The rest of LPRng 3.8.B's key table (``src/common/vars.c``, ``Pc_var_list``, as of
#: vars.c 1.4 of 2005-04-14): keys LPRng knows that lpfilter keeps untyped and never uses.
#: With KEYS, PARSER_KEYS and the filter keys they are every key checkpc does not call
#: unknown.
LPRNG_OTHER_KEYS = frozenset([
    "accounting_namefixup", "allow_getenv", "allow_user_logging", "allow_user_setting", "append_z",
    "architecture", "auth", "auth_forward", "break_classname_priority_link",
    "check_for_protocol_violations", "chooser", "chooser_interval", "chooser_routine",
    "chooser_scan_queue", "class_in_status", "config_file", "control_file_line_order",
    "default_format", "default_permission", "default_printer", "default_priority",
    "default_tmp_dir", "destinations", "discard_large_jobs", "discard_zero_length_jobs",
    "drop_root", "exit_linger_timeout", "fakelargefile", "fifo_lock_file",
    "filter_poll_interval", "force_fqdn_hostname", "force_ipaddr_hostname",
    "force_lpq_status", "force_queuename", "full_time", "generate_banner", "group",
    "ignore_requested_user_priority", "incoming_control_filter", "ipp_listen_port", "ipp_port",
    "ipv6", "kerberos_forward_principal", "kerberos_keytab", "kerberos_life", "kerberos_renew",
    "kerberos_server_principal", "kerberos_service", "lockfile", "logger_destination",
    "logger_max_size", "logger_path", "logger_timeout", "lpd_force_poll", "lpd_path",
    "lpd_poll_servers_started", "lpd_poll_start_interval", "lpd_poll_time", "lpd_printcap_path",
    "lpq_status_cached", "lpq_status_file", "lpq_status_interval", "lpq_status_stale", "lpr",
    "lpr_bounce", "lpr_bsd", "lpr_send_try", "mail_from", "mail_operator_on_error",
    "max_accounting_file_size", "max_datafiles", "max_log_file_size", "max_move_count",
    "max_servers_active", "max_status_line", "max_status_size", "min_accounting_file_size",
    "min_log_file_size", "min_status_size", "ms_time_resolution",
    "network_connect_grace", "nline_after_file", "order_routine", "pc_entries_required",
    "perms_path", "pgp_path", "prefix_option_to_option", "prefix_z", "printcap_path",
    "queue_control_file", "queue_lock_file", "queue_status_file", "queue_unspooler_file",
    "remote_support", "remove_z", "report_server_as", "require_configfiles", "require_explicit_q",
    "return_short_status", "reuse_addr", "reverse_lpq_status", "reverse_priority_order",
    "safe_chars", "send_block_format", "sendmail", "sendmail_to_user",
    "server_tmp_dir", "short_status_length", "ssl_ca_file", "ssl_ca_path", "ssl_crl_file",
    "ssl_crl_path", "ssl_server_cert", "ssl_server_password_file", "stalled_time", "syslog_device",
    "translate_incoming_format", "unix_socket_path", "use_info_cache", "use_shorthost", "user",
    "user_is_authuser", "user_printcap"])

#: Keys no spooler reads but a filter does, from ``PRINTCAP_ENTRY`` (ifhp's ``ifhp=model=...``
#: options, as LPRng sites write them): passed on to the filter, never "unknown".
FILTER_READ_KEYS = frozenset({"ifhp"})

#: Keys lpfilter reads but its own spool (watch, print) does not act on yet, and what that
#: means; checkpc notes each one set, so nobody believes it has an effect. Filters
#: (``if``, ``of``, ``filter``, ``Xf``, ``pr``) and banners run (``lpfilter.filters``).
NOT_ACTED_ON = {
    "chooser": "it does not pass jobs on to other queues (no load balancing)",
    "router": "it does not route jobs",
    "control_filter": "it runs no control file filter",
    "br": "it does not set up the serial line (do that with stty(1))",
    "stty": "it does not set up the serial line (do that with stty(1))",
    "rg": "it does not restrict printing to these groups: whoever may write the spool"
          " directory can print",
    "fx": "it does not check job formats",
    "achk": "it does not ask the accounting target",
    "stop_on_abort": "it does not stop the queue when a job aborts",
    "translate_format": "it does not rename job formats",
}

_NOT_FILTERS = frozenset("aflsp")


def is_filter_key(name: str) -> bool:
    """Keys whose value is a filter command line (``if``, ``of``, ``filter``, ``vf``...)."""
    return name in ("if", "of", "filter", "bp", "bs", "be", "pr") or (
        len(name) == 2 and name[1] == "f" and name[0].isalpha() and name[0].islower()
        and name[0] not in _NOT_FILTERS)


def is_by_name(name: str) -> bool:
    """Keys LPRng reads by name, not through its variable table (``key@`` leaves them unset)."""
    return name not in KEYS and is_filter_key(name)
