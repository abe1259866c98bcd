"""`make demo`: nbtorch at work on the best device available."""
import time
import nbtorch as torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"nbtorch {torch.__version__} on {device}"
      f"{'' if device.type == 'cuda' else ' (no CUDA GPU with CuPy found; the CPU runs NumPy)'}\n")

torch.manual_seed(0)
x = torch.randn(2, 3, device=device)
w = torch.ones(3, 2, device=device)
print("x =", x)
print("x @ w =", x @ w)
print("softmax over the last dim:", x.softmax(-1))
print("max along dim 1:", x.max(dim=1))

print("\nThe device switch:")
c = x.cpu()
print("x.cpu().device =", c.device, "| back:", c.to(device).device)
print("dtypes follow PyTorch: int tensor * 2.5 ->", (torch.tensor([1, 2]) * 2.5).dtype)

a, b = torch.ones(4), torch.ones(4)
n = 20000
t = time.perf_counter()
for _ in range(n): a + b
print(f"\na + b on shape (4,): {(time.perf_counter() - t) / n * 1e6:.2f} µs per op")
