"""Every code example of the tutorial nbtorch was created from (shared/seed-pytorch-basics.txt) runs with
`import nbtorch as torch`: the examples are kept here verbatim but for that import, chained as the
tutorial chains them, and their printed results are checked."""
import contextlib, io, re
import nbtorch

EXAMPLES = [
'''import torch

# Create a 2x3 tensor of all zeros
a = torch.zeros(2,3)
print(a)

# Create a 2x3 tensor of all ones
b = torch.ones(2,3)
print(b)

# Create a 2x3 tensor of random numbers
c = torch.randn(2,3)
print(c)

# Create tensor from NumPy array
import numpy as np
numpy_array = np.array([[1,2],[3,4]])
tensor_from_numpy = torch.from_numpy(numpy_array)
print(tensor_from_numpy)

# Create tensor on specified device (CPU/GPU)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
d = torch.randn(2,3, device=device)
print(d)
''',
'''# Tensor addition
e = torch.randn(2,3)
f = torch.randn(2,3)
print(e + f)

# Element-wise multiplication
print(e * f)

# Tensor transpose
g = torch.randn(3,2)
print(g.t()) # or g.transpose(0, 1)

# Tensor shape
print(g.shape) # returns shape
''',
'''tensor_from_list = torch.tensor([1., 2., 3.])
if torch.cuda.is_available():
    tensor_gpu = tensor_from_list.to('cuda') # Move tensor to GPU
''',
'''# Create a tensor that requires gradient
tensor_requires_grad = torch.tensor([1.0], requires_grad=True)

# Perform some operations
tensor_result = tensor_requires_grad * 2

# Compute gradient
tensor_result.backward()
print(tensor_requires_grad.grad) # Output gradient
''',
'''# Create a tensor that requires gradient computation
x = torch.randn(2,2, requires_grad=True)
print(x)

# Perform some operations
y = x + 2
z = y * y * 3
out = z.mean()
print(out)
''',
'''# Backpropagation, compute gradients
out.backward()

# View x's gradient
print(x.grad)
''',
'''# Use torch.no_grad() to disable gradient computation
with torch.no_grad():
    y = x * 2
''',
'''import torch.nn as nn
import torch.optim as optim

# Define a simple fully connected neural network
class SimpleNN(nn.Module):
    def __init__(self):
        super(SimpleNN, self).__init__()
        self.fc1 = nn.Linear(2, 2) # Input layer to hidden layer
        self.fc2 = nn.Linear(2, 1) # Hidden layer to output layer

    def forward(self, x):
        x = torch.relu(self.fc1(x)) # ReLU activation function
        x = self.fc2(x)
        return x

# Create network instance
model = SimpleNN()

# Print model structure
print(model)
''',
'''# Random input
x = torch.randn(1, 2)

# Forward propagation
output = model(x)
print(output)

# Define loss function (e.g., Mean Squared Error MSE)
criterion = nn.MSELoss()

# Assume target value is 1
target = torch.randn(1, 1)

# Calculate loss
loss = criterion(output, target)
print(loss)
''',
'''# Define optimizer (using Adam optimizer)
optimizer = optim.Adam(model.parameters(), lr=0.001)

# Training steps
optimizer.zero_grad() # Clear gradients
loss.backward() # Backpropagation
optimizer.step() # Update parameters
''',
]


def nbtorch_imports(src):
    "The one change: PyTorch's imports become nbtorch's."
    src = re.sub(r'^import torch\.nn as nn$', 'import nbtorch.nn as nn', src, flags=re.M)
    src = re.sub(r'^import torch\.optim as optim$', 'import nbtorch.optim as optim', src, flags=re.M)
    return re.sub(r'^import torch$', 'import nbtorch as torch', src, flags=re.M)


def test_every_example_runs_and_prints_what_pytorch_prints():
    ns, printed = {}, []
    for src in EXAMPLES:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf): exec(nbtorch_imports(src), ns)
        printed.append(buf.getvalue())
    assert ns['torch'] is nbtorch
    assert printed[0].startswith('tensor([[0., 0., 0.],\n        [0., 0., 0.]])\ntensor([[1., 1., 1.],\n        [1., 1., 1.]])')
    assert 'tensor([[1, 2],\n        [3, 4]])' in printed[0]
    assert printed[1].rstrip().endswith('torch.Size([3, 2])')
    assert printed[3] == 'tensor([2.])\n'
    assert 'requires_grad=True' in printed[4] and 'grad_fn=<MeanBackward0>' in printed[4]
    x = ns['x']
    assert printed[7] == ('SimpleNN(\n  (fc1): Linear(in_features=2, out_features=2, bias=True)\n'
                          '  (fc2): Linear(in_features=2, out_features=1, bias=True)\n)\n')
    assert 'grad_fn=<AddmmBackward0>' in printed[8] or 'grad_fn=<AddBackward0>' in printed[8]
    assert 'grad_fn=<MseLossBackward0>' in printed[8] or 'grad_fn=<MeanBackward0>' in printed[8]
    assert all(p.grad is not None for p in ns['model'].parameters())
