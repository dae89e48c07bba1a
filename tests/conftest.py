import torch

# Tests compare numbers across runs; keep them single-threaded and quiet.
torch.set_num_threads(1)
