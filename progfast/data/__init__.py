"Data: the embedded Fashion-MNIST subset and folders of images"
