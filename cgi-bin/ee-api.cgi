#!/bin/sh
# ee-api.cgi - runs ee-api as a CGI program with its settings read from a
# file outside the web root, so that no token sits in .htaccess or in the
# server's configuration (cgi-bin/README.md).
#
# The settings file: $EE_CGI_CONFIG when the server sets it (SetEnv: a
# path, not a secret), else ~/easyenclave/ee-api.env.  It holds
# NAME=value lines for EE_* settings only (docs/CONFIGURATION.md), taken
# literally: no quotes, no expansion, no spaces around "=".  Empty lines
# and lines starting with # are skipped.  It holds tokens: mode 600.
#
# The program: EE_CGI_PROGRAM from that file, else ee-api beside it.
#
# Anything wrong answers the client 500 {"error":"invalid_config"}, as
# ee-api itself does for a bad setting, and says why on standard error
# (the server's error log) without ever printing a value.
set -u

fail() {
	echo "ee-api.cgi: $*" >&2
	printf 'Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n'
	printf 'Cache-Control: no-store\r\n\r\n{"error":"invalid_config"}'
	exit 0
}

config=${EE_CGI_CONFIG:-}
if [ -z "$config" ]; then
	home=${HOME:-}
	# suEXEC and most servers start CGI programs without HOME.
	[ -n "$home" ] || home=$(getent passwd "$(id -u)" | cut -d: -f6)
	[ -n "$home" ] || fail "no EE_CGI_CONFIG and no home directory to look in"
	config=$home/easyenclave/ee-api.env
fi
if [ ! -f "$config" ] || [ ! -r "$config" ]; then
	fail "cannot read the settings file $config"
fi

cr=$(printf '\r')
number=0
while IFS= read -r line || [ -n "$line" ]; do
	number=$((number + 1))
	line=${line%"$cr"} # a file edited on Windows
	case $line in
	'' | '#'*) continue ;;
	esac
	name=${line%%=*}
	case $name in
	"$line" | *[!A-Z0-9_]*) fail "$config line $number: not NAME=value" ;;
	EE_?*)
		# shellcheck disable=SC2163 # NAME=value as one word, not expanded again
		export "$line"
		;;
	*) fail "$config line $number: $name is not an EE_ setting" ;;
	esac
done <"$config"

program=${EE_CGI_PROGRAM:-${config%/*}/ee-api}
unset EE_CGI_PROGRAM EE_CGI_CONFIG
if [ ! -f "$program" ] || [ ! -x "$program" ]; then
	fail "cannot run $program"
fi
exec "$program"
