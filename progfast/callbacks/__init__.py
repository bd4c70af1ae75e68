"Callbacks that change what the network sees: progressive resizing, MixSize, the learned resizer"
