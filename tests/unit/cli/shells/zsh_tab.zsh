# Types a command line into an interactive zsh that loaded completions/_meshctl, presses Tab, and prints
# what the terminal shows until $2 (a pattern) appears or 15 s pass. Usage: zsh -f zsh_tab.zsh LINE PATTERN
zmodload zsh/zpty
zpty shell 'TERM=dumb PS1="%% " zsh -f -i'
zpty -w shell 'autoload -U compinit; compinit -u -D; unsetopt beep; source $MESHCTL_COMPLETIONS/_meshctl'
zpty -w -n shell "$1"$'\t'
screen=""
deadline=$(( SECONDS + 15 ))
while (( SECONDS < deadline )); do
  if zpty -r -t shell chunk; then
    screen+="$chunk"
    [[ "$screen" == *${~2}* ]] && break
  else
    sleep 0.1
  fi
done
print -r -- "$screen"
zpty -d shell
