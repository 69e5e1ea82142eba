/// `tokenctl --help`, per-command help and the shell completion scripts.
enum Help {
  static let version = "0.1.0"

  static let overview = """
    tokenctl: gets tokens from token-brokerd and steers it.

    usage:
      tokenctl [--socket PATH] token NAME [--scope S] [--min-valid N] [--json]   print a current token
      tokenctl [--socket PATH] header NAME [--scope S]                           print the header line
      tokenctl [--socket PATH] status [--json]                                   every provider's state
      tokenctl [--socket PATH] refresh NAME                                      admin: fetch a new token now
      tokenctl [--socket PATH] reload                                            admin: re-read the configuration
      tokenctl [--socket PATH] login NAME [--device] [--paste]                   admin: log the provider in
      tokenctl [--socket PATH] logout NAME                                       admin: revoke and forget its login
      tokenctl [--socket PATH] inspect NAME [--scope S] [--json]                 what the token says
      tokenctl --generate-completion-script bash|zsh|fish
      tokenctl --version | help [COMMAND]

    --socket PATH   the daemon's socket (default: $TOKEN_BROKER_SOCKET or /run/token-broker.sock)

    exit status: 0 ok, 1 other error (a login denied or expired), 64 usage, 69 daemon unreachable,
    75 token temporarily unavailable, 77 forbidden
    """

  static func text(for command: String?) -> String {
    switch command {
    case "token":
      return """
        usage: tokenctl [--socket PATH] token NAME [--scope S] [--min-valid N] [--json]
          Prints a current token of provider NAME.
          --scope S        space-separated scopes, within the provider's allowed_scopes
          --min-valid N    seconds the token must still be valid
          --json           print the whole JSON answer
        """
    case "header":
      return """
        usage: tokenctl [--socket PATH] header NAME [--scope S]
          Prints the header line to send upstream (e.g. Authorization: Bearer ...).
        """
    case "status":
      return """
        usage: tokenctl [--socket PATH] status [--json]
          Shows the state of every provider this user may see; --json for scripts.
        """
    case "refresh":
      return """
        usage: tokenctl [--socket PATH] refresh NAME
          Fetches a new token now (admins only); exit 75 unless the provider is ok afterwards.
        """
    case "reload":
      return """
        usage: tokenctl [--socket PATH] reload
          Re-reads the configuration (admins only); an invalid one is refused and the old stays.
        """
    case "login":
      return """
        usage: tokenctl [--socket PATH] login NAME [--device] [--paste]
          Logs provider NAME in (admins only): token-brokerd gets and keeps the refresh token.
          Prints the authorization address to open in a browser and listens on 127.0.0.1 for
          the browser to come back; for a browser on another machine it prints the
          'ssh -L PORT:127.0.0.1:PORT HOST' to run there. The address the browser ended on
          may be pasted on stdin instead.
          --paste    no listener: only paste the address the browser ended on
          --device   device login (RFC 8628): prints a code to enter on any device and waits
          Exit 0 once logged in, 1 when the login was denied, expired or failed.
        """
    case "logout":
      return """
        usage: tokenctl [--socket PATH] logout NAME
          Revokes provider NAME's refresh token at its revocation_url (when it has one) and
          forgets it (admins only); the provider then needs 'tokenctl login NAME'.
        """
    case "inspect":
      return """
        usage: tokenctl [--socket PATH] inspect NAME [--scope S] [--json]
          Shows what provider NAME's current token says, never the token: a JWT's header and
          claims (exp and iat also as UTC time), or the provider's introspection answer.
          --scope S   the token for these scopes
          --json      print the whole JSON answer
        """
    default: return overview
    }
  }

  static let commands = Invocation.subcommands.joined(separator: " ")

  static func completion(_ shell: Invocation.Shell) -> String {
    switch shell {
    case .bash:
      return """
        _tokenctl() {
          local cur prev cmd
          cur="${COMP_WORDS[COMP_CWORD]}"
          prev="${COMP_WORDS[COMP_CWORD-1]}"
          cmd="${COMP_WORDS[1]}"
          case "$prev" in
            --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            --scope|--min-valid) return ;;
          esac
          if [ "$COMP_CWORD" -eq 1 ]; then
            COMPREPLY=($(compgen -W "\(commands) --socket --help --version" -- "$cur")); return
          fi
          case "$cmd" in
            token) COMPREPLY=($(compgen -W "--scope --min-valid --json --socket --help" -- "$cur")) ;;
            header) COMPREPLY=($(compgen -W "--scope --socket --help" -- "$cur")) ;;
            status) COMPREPLY=($(compgen -W "--json --socket --help" -- "$cur")) ;;
            login) COMPREPLY=($(compgen -W "--device --paste --socket --help" -- "$cur")) ;;
            inspect) COMPREPLY=($(compgen -W "--scope --json --socket --help" -- "$cur")) ;;
            *) COMPREPLY=($(compgen -W "--socket --help" -- "$cur")) ;;
          esac
        }
        complete -F _tokenctl tokenctl

        """
    case .zsh:
      return """
        #compdef tokenctl
        _tokenctl() {
          local -a commands
          commands=(\(commands))
          if (( CURRENT == 2 )); then
            _describe 'command' commands
          else
            case $words[2] in
              login) _arguments '--device[device login]' '--paste[paste the address]' \\
                '--socket[daemon socket]:socket:_files' '--help[help]' ;;
              *) _arguments '--socket[daemon socket]:socket:_files' '--scope[scopes]:scope:' \\
                '--min-valid[seconds]:seconds:' '--json[JSON answer]' '--help[help]' ;;
            esac
          fi
        }
        _tokenctl "$@"

        """
    case .fish:
      return """
        complete -c tokenctl -f
        complete -c tokenctl -n '__fish_use_subcommand' -a '\(commands)'
        complete -c tokenctl -l socket -r -F -d 'the daemon socket'
        complete -c tokenctl -n '__fish_seen_subcommand_from token header inspect' -l scope -r -d 'scopes'
        complete -c tokenctl -n '__fish_seen_subcommand_from token' -l min-valid -r -d 'seconds'
        complete -c tokenctl -n '__fish_seen_subcommand_from token status inspect' -l json -d 'JSON answer'
        complete -c tokenctl -n '__fish_seen_subcommand_from login' -l device -d 'device login'
        complete -c tokenctl -n '__fish_seen_subcommand_from login' -l paste -d 'paste the address'

        """
    }
  }
}
