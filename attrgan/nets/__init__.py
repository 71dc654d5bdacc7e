"""The networks (encoder, decoder, discriminator), the losses, the update steps, a loaded model."""
