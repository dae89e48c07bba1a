# shellcheck shell=bash
# Command-line option parsing for recipe scripts, in the style of Kaldi's
# parse_options.sh.  Source it after declaring the options as shell variables:
#
#   stage=0
#   stop_stage=100
#   use_gpu=false
#   . ../../../utils/parse_options.sh
#
# Then `script.sh --stage 3 --stop-stage=4 --use-gpu true` sets stage=3,
# stop_stage=4, use_gpu=true (dashes in option names become underscores).
#
# Rules:
#   * an option must name a variable the script set before sourcing this file,
#     otherwise the script stops with an error;
#   * a variable whose default is true/false only accepts true or false;
#   * --help / -h prints $help_message when the script defines it, otherwise
#     the comment block at the top of the script, then exits 0;
#   * parsing stops at `--` (which is removed) or at the first argument that
#     does not start with `--`; those arguments stay in "$@".

__po_usage() {
  if [[ -n "${help_message:-}" ]]; then
    printf '%s\n' "$help_message"
    return
  fi
  # Leading comment block of the calling script, shebang and shellcheck lines skipped.
  local line started=0
  while IFS= read -r line; do
    case "$line" in
      '#!'* | '# shellcheck'*) continue ;;
      '#'*)
        started=1
        line=${line#\#}
        printf '%s\n' "${line# }"
        ;;
      '')
        if (( started )); then break; fi
        ;;
      *) break ;;
    esac
  done < "$0"
}

while (( $# > 0 )); do
  case "$1" in
    --help | -h)
      __po_usage
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      __po_name=${1%%=*}
      __po_value=${1#*=}
      shift
      ;;
    --?*)
      __po_name=$1
      if (( $# < 2 )); then
        echo "$0: option $__po_name needs a value" >&2
        exit 1
      fi
      __po_value=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac

  __po_var=${__po_name#--}
  __po_var=${__po_var//-/_}
  if [[ ! $__po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "$0: invalid option name: $__po_name" >&2
    exit 1
  fi
  if [[ -z "${!__po_var+set}" ]]; then
    echo "$0: unknown option: $__po_name (no variable '$__po_var' declared by the script; try --help)" >&2
    exit 1
  fi
  __po_old=${!__po_var}
  if [[ $__po_old == true || $__po_old == false ]] \
    && [[ $__po_value != true && $__po_value != false ]]; then
    echo "$0: option $__po_name expects true or false, got '$__po_value'" >&2
    exit 1
  fi
  printf -v "$__po_var" '%s' "$__po_value"
done

unset -v __po_name __po_value __po_var __po_old
unset -f __po_usage
