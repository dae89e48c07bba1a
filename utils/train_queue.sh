# Helpers for recipe scripts that run many trainings side by side. Source it:
#   . ../../../utils/train_queue.sh
# run_queue:   reads one shell command per line and runs $jobs of them at once, each with
#              one CPU thread, so every run sees the same conditions (timings comparable)
# resume_flag: "--start-epoch K+1" when DIR (or the directory it links to) holds epoch-K.pt
#              files (the newest K), else nothing, so an interrupted run continues where
#              it stopped
# decoded:     true when DIR/METHOD holds a decode.py summary whose name ends in TAG
#              (e.g. epoch-8-avg-1-use-averaged-model, packed), so reruns skip it

run_queue() {
  xargs -P "$jobs" -d '\n' -I CMD env OMP_NUM_THREADS=1 bash -c CMD
}

resume_flag() {
  local last
  last=$(find -H "$1" -maxdepth 1 -name 'epoch-*.pt' 2>/dev/null | sed 's/.*epoch-\([0-9]*\)\.pt/\1/' | sort -n | tail -1)
  [ -n "$last" ] && echo "--start-epoch $((last + 1))"
  return 0
}

decoded() {
  ls "$1/$2"/subnet-summary-*-"$3".json >/dev/null 2>&1
}
