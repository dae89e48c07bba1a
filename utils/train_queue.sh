# Helpers for recipe scripts that run many trainings side by side. Source it:
#   . ../../../utils/train_queue.sh
# run_queue:   reads one shell command per line and runs $jobs of them at once, each with
#              one CPU thread, so every run sees the same conditions (timings comparable)
# resume_flag: the train.py flags that continue the run in DIR, so an interrupted run goes
#              on where it stopped: "--start-batch N" when the newest checkpoint-N.pt was
#              written after the newest epoch-K.pt (killed mid-epoch), else
#              "--start-epoch K+1", else nothing (allinone/training/resume.py decides)
# decoded:     true when DIR/METHOD holds a decode.py summary whose name ends in TAG
#              (e.g. epoch-8-avg-1-use-averaged-model, packed), so reruns skip it

_train_queue_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

run_queue() {
  xargs -P "$jobs" -d '\n' -I CMD env OMP_NUM_THREADS=1 bash -c CMD
}

resume_flag() {
  PYTHONPATH="$_train_queue_root${PYTHONPATH:+:$PYTHONPATH}" python3 -m allinone.training.resume "$1"
}

decoded() {
  ls "$1/$2"/subnet-summary-*-"$3".json >/dev/null 2>&1
}
