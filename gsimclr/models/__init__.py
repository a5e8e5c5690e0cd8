"""Networks: the denoising autoencoder, the backbones and the SimCLR projection head."""
