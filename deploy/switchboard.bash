# bash completion for switchboard. Generated from the verb table by
# "deno task manual"; do not edit. Source it, or install it as
# /usr/share/bash-completion/completions/switchboard.
_switchboard() {
  local cur prev verb="" at=0 i word operand=-1 skip=0
  local options="" file_options="" value_options="" file_operands="" addr=0
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD - 1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    if [[ "$word" != -* ]]; then
      verb="$word"
      at=$i
      break
    fi
  done
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "serve check echo chat cmd time get put ls version help --help --version" -- "$cur"))
    return
  fi
  case "$verb" in
    help)
      COMPREPLY=($(compgen -W "serve check echo chat cmd time get put ls version" -- "$cur"))
      return
      ;;
    serve)
      options="--help -h --config -c --exit-with-parent"
      file_options="--config -c"
      value_options=""
      file_operands=""
      addr=0
      ;;
    check)
      options="--help -h --config -c --json"
      file_options="--config -c"
      value_options=""
      file_operands=""
      addr=0
      ;;
    echo)
      options="--help -h --udp --timeout --tls --ca --insecure"
      file_options=""
      value_options="--timeout --ca"
      file_operands=""
      addr=1
      ;;
    chat)
      options="--help -h --name --tcp --timeout --keepalive --wait --tls --ca --insecure"
      file_options=""
      value_options="--name --timeout --keepalive --wait --ca"
      file_operands=""
      addr=1
      ;;
    cmd)
      options="--help -h --token --argv --no-stdin -n --cwd --timeout --tls --ca --insecure"
      file_options=""
      value_options="--token --cwd --timeout --ca"
      file_operands=""
      addr=1
      ;;
    time)
      options="--help -h --tcp --rfc868 --timeout --tls --ca --insecure"
      file_options=""
      value_options="--timeout --ca"
      file_operands=""
      addr=1
      ;;
    get)
      options="--help -h --continue -c --token --tls --ca --insecure"
      file_options=""
      value_options="--token --ca"
      file_operands="2"
      addr=1
      ;;
    put)
      options="--help -h --overwrite --token --tls --ca --insecure"
      file_options=""
      value_options="--token --ca"
      file_operands="1"
      addr=1
      ;;
    ls)
      options="--help -h --long -l --json --token --tls --ca --insecure"
      file_options=""
      value_options="--token --ca"
      file_operands=""
      addr=1
      ;;
    version)
      options="--help -h"
      file_options=""
      value_options=""
      file_operands=""
      addr=0
      ;;
    *)
      return
      ;;
  esac
  # Which operand is being typed: words after the verb that are neither
  # options nor their values; after "--" (cmd's COMMAND) nothing is ours.
  for ((i = at + 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    if ((skip)); then
      skip=0
    elif [[ "$word" == "--" ]]; then
      COMPREPLY=($(compgen -c -- "$cur"))
      return
    elif [[ " $file_options $value_options " == *" $word "* ]]; then
      skip=1
    elif [[ "$word" != -* ]]; then
      operand=$((operand + 1))
    fi
  done
  if [[ " $file_options " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  if [[ " $value_options " == *" $prev "* ]]; then
    COMPREPLY=()
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
    return
  fi
  operand=$((operand + 1))
  if ((addr)) && ((operand == 0)); then
    COMPREPLY=($(compgen -A hostname -- "$cur"))
  elif [[ " $file_operands " == *" $operand "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=()
  fi
}
complete -F _switchboard switchboard
