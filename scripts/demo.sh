#!/usr/bin/env bash
# The main job on the embedded default: install, build the default linker (MiniLM + ~10k
# Wikipedia vital articles; about 5 minutes on 2 cores, once), then link the README's sentences.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f "$(python3 -c 'from elcore import settings; print(settings.default_model_dir())')/elq_config.json" ]; then
  elq build-default
fi
elq link "Who painted the Mona Lisa, and where does it hang?" \
         "Albert Einstein developed the theory of relativity." \
         "The Amazon River flows through Brazil into the Atlantic Ocean."
echo "Try it interactively: elq link -i"
