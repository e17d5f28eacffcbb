"""What the tests share: the `vae-nb` command, run in this process (`cli`: fast, no second import of torch and fastai)
or in a process of its own (`cli_process`: for what only a process shows: signals, the exit status of the script,
what is printed while importing, several processes)."""
import os, subprocess, sys

MAIN = [sys.executable, '-c', 'import sys; from vae_nb.tools.cli import main; sys.exit(main(sys.argv[1:]))']   # what the vae-nb script runs
OFFLINE = {'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9', 'no_proxy': '', 'NO_PROXY': ''}  # downloads fail at once

def cli_env(data=None, **extra) -> dict:
    "The environment a command runs in: this one without `VAE_NB_DEBUG`, matplotlib off screen, the data root `data` if given, then `extra`."
    env = {k: v for k, v in os.environ.items() if k != 'VAE_NB_DEBUG'}
    env['MPLBACKEND'] = 'Agg'
    if data is not None: env['VAE_NB_DATA'] = str(data)
    return {**env, **{k: str(v) for k, v in extra.items()}}

def cli_process(*args, cwd=None, data=None, timeout=900, **env) -> tuple:
    "`vae-nb ARGS` in a fresh process (what the installed script runs) in `cwd`: (exit status, stdout, stderr)."
    r = subprocess.run([*MAIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=cli_env(data, **env), timeout=timeout)
    return r.returncode, r.stdout, r.stderr

def cli(*args, cwd=None, data=None, **env) -> tuple:
    """`vae-nb ARGS` in this process, as `cli_process` would run it (`vae_nb.tools.cli.run_main`: in `cwd`, in the environment
    of `cli_env`, with stdout and stderr of its own; everything restored after): (exit status, stdout, stderr)."""
    from vae_nb.tools.cli import run_main
    return run_main(*args, cwd=cwd, env=cli_env(data, **env))
