# Helpers for recipe scripts that run many trainings side by side. Source it:
#   . ../../../utils/train_queue.sh
# run_queue:   reads one shell command per line and runs $jobs of them at once, each with
#              one CPU thread, so every run sees the same conditions (timings comparable)
# resume_flag: the train.py flag that continues the run in DIR (which may be a link), so an
#              interrupted run goes on where it stopped: "--start-batch N" when the newest
#              checkpoint-N.pt is newer than every epoch-K.pt (killed mid-epoch), else
#              "--start-epoch K+1" for the newest epoch-K.pt, else nothing
# decoded:     true when DIR/METHOD holds a decode.py summary whose name ends in TAG
#              (e.g. epoch-8-avg-1-use-averaged-model, packed), so reruns skip it

run_queue() {
  xargs -P "$jobs" -d '\n' -I CMD env OMP_NUM_THREADS=1 bash -c CMD
}

resume_flag() {
  local epoch batch
  epoch=$(_newest "$1" epoch)
  batch=$(_newest "$1" checkpoint)
  # A checkpoint written after the newest epoch-K.pt was written in epoch K+1.
  if [ -n "$batch" ] && { [ -z "$epoch" ] || [ "$1/checkpoint-$batch.pt" -nt "$1/epoch-$epoch.pt" ]; }; then
    echo "--start-batch $batch"
  elif [ -n "$epoch" ]; then
    echo "--start-epoch $((epoch + 1))"
  fi
  return 0
}

# _newest DIR PREFIX: the largest N of DIR/PREFIX-N.pt (DIR may be a link), or nothing
_newest() {
  find -H "$1" -maxdepth 1 -name "$2-*.pt" 2>/dev/null | sed -n "s|.*/$2-\([0-9][0-9]*\)\.pt$|\1|p" | sort -n | tail -1
}

decoded() {
  ls "$1/$2"/subnet-summary-*-"$3".json >/dev/null 2>&1
}
